"""Checkpoints: atomic writes, ``weights_only`` loads, clear errors for corrupt/foreign files.

A checkpoint is a dict of tensors and plain Python values (``torch.save``). It is written to a
temporary file in the same folder, flushed and fsync'ed, then moved over the old one with
``os.replace``, so a kill at any moment leaves either the old or the new file, never a torn one.
A failed write (disk full, I/O error) removes the temporary file and raises
:class:`CheckpointError`; temporaries of a process killed mid-write are removed by the next run
that claims the folder (:func:`snnplug.engine.rundir.claim`).
Loading uses ``torch.load(weights_only=True)``: no pickled code is executed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from snnplug.errors import CheckpointError

FORMAT = "snnplug-checkpoint/1"
REQUIRED = ("format", "strategy", "strategy_config", "model", "epoch")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (``format`` is added) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({**state, "format": FORMAT}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise CheckpointError(
            f"cannot write checkpoint {path} ({exc.strerror or exc}); the previous checkpoint, if any, is "
            f"intact; free space or choose another --out, then --resume"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, *, strategy: str | None = None) -> dict[str, Any]:
    """Load and validate a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` for a missing, truncated, corrupt or foreign file, or when
    ``strategy`` is given and the checkpoint was written by another strategy.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/unsafe files
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({type(exc).__name__}: {str(exc)[:200]}); it is "
            f"corrupt, truncated, or not an snnplug checkpoint (only weights_only files load)"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an snnplug checkpoint (expected format {FORMAT!r})")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    if strategy is not None and state["strategy"] != strategy:
        raise CheckpointError(
            f"checkpoint {path} was written by strategy {state['strategy']!r}, not {strategy!r}; "
            f"use another output folder or the matching --strategy"
        )
    return state
