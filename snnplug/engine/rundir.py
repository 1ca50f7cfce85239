"""A run folder belongs to one run.

:func:`claim` is called before training touches anything:

1. the folder is created and proven writable (a probe file is written, fsync'ed and removed), so
   an unwritable ``--out`` fails before the first epoch, not after it;
2. an exclusive ``fcntl.flock`` on ``<out>/.snnplug.lock`` is taken without waiting: a second run
   writing to the same folder at the same time is refused, naming the holder's pid (the kernel
   drops the lock when the holder dies, so a killed run never blocks the next one);
3. a folder that already holds ``checkpoint.pt`` is refused unless ``resume`` (continue it) or
   ``force`` (replace it) says what to do with it;
4. temporary checkpoint files left by a run killed while writing (``.checkpoint.pt.<pid>.tmp``)
   are removed: the lock proves no one else is writing them.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from snnplug.errors import SnnplugError

LOCK_NAME = ".snnplug.lock"
CHECKPOINT_NAME = "checkpoint.pt"


class RunFolderError(SnnplugError):
    """The output folder is unwritable, in use by another run, or holds another run's checkpoint."""


@dataclass
class RunLock:
    """The held lock of a claimed run folder; :meth:`release` (or process exit) frees it."""

    folder: Path
    _file: IO[str] | None

    def release(self) -> None:
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write, fsync and remove a probe file in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".snnplug-probe.{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(
            f"output folder {folder} is not writable ({exc.strerror or exc}); choose another --out "
            f"or fix its permissions/free space before training"
        ) from None


def _lock(folder: Path) -> IO[str]:
    f = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held for the run's lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise RunFolderError(
            f"output folder {folder} is in use by another snnplug run (pid {holder}); wait for it to "
            f"finish or choose another --out"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove ``.checkpoint.pt.<pid>.tmp`` files (call only while holding the folder's lock)."""
    stale = sorted(folder.glob(f".{CHECKPOINT_NAME}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def claim(folder: str | Path, *, resume: bool = False, force: bool = False) -> RunLock:
    """Claim ``folder`` for one run; see the module docstring. Raises :class:`RunFolderError`."""
    folder = Path(folder).expanduser()
    if resume and force:
        raise RunFolderError("--resume continues the run in the folder and --force replaces it: pass one of them")
    check_writable(folder)
    f = _lock(folder)
    try:
        remove_stale_temporaries(folder)
        ckpt = folder / CHECKPOINT_NAME
        if ckpt.exists() and not (resume or force):
            raise RunFolderError(
                f"{folder} already holds a run's checkpoint ({ckpt}); pass --resume to continue that "
                f"run, --force to replace it, or choose another --out"
            )
    except BaseException:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
        raise
    return RunLock(folder, f)
