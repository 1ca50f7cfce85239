"""torchvision and tonic datasets read from a folder the user names. Nothing downloads.

``torchvision:<Class>`` (e.g. ``torchvision:CIFAR10``, ``torchvision:MNIST``): constructed with
``download=False``; missing files raise :class:`DataError` naming the expected layout.

``tonic:NMNIST``: read from the extracted tonic layout ``<root>/NMNIST/{Train,Test}/<digit>/*.bin``
with tonic's own reader (``tonic.io.read_mnist_file``) and framed with
``tonic.transforms.ToFrame(n_time_bins=T)``: samples are float frames ``[T, 2, 34, 34]``. tonic's
``NMNIST`` class itself is not used because it downloads whenever its zip archive is absent.
Other ``tonic:<Class>`` names are constructed only when ``<root>/<Class>`` exists; a download
attempt (files incomplete) is turned into a :class:`DataError`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from snnplug.errors import DataError

NMNIST_LAYOUT = "<root>/NMNIST/Train/<digit 0-9>/*.bin and <root>/NMNIST/Test/<digit 0-9>/*.bin"


def load(name: str, root: str | Path | None, *, limit: int | None = None, T: int | None = None) -> Any:
    from snnplug.data import DatasetBundle

    lib, _, cls_name = name.partition(":")
    if root is None:
        raise DataError(f"{name} is read from a folder: pass root=... (--data-root); nothing is downloaded")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    if lib == "torchvision":
        train, test, shape, classes = _torchvision(cls_name, root)
        frames = False
    elif lib == "tonic":
        if T is None:
            raise DataError(f"{name} yields event frames: pass T (the number of frames per sample)")
        train, test, shape, classes = _tonic(cls_name, root, T)
        frames = True
    else:
        raise DataError(f"unknown dataset library {lib!r} in {name!r}; use 'torchvision:<Class>' or 'tonic:<Class>'")
    if limit is not None:
        from torch.utils.data import Subset

        train = Subset(train, range(min(limit, len(train))))
        test = Subset(test, range(min(max(1, limit // 5), len(test))))
    return DatasetBundle(name, train, test, shape, classes, frames=frames, source=name,
                         root=str(root.resolve()), limit=limit)


def _torchvision(cls_name: str, root: Path) -> tuple[Any, Any, tuple[int, ...], int]:
    try:
        datasets = importlib.import_module("torchvision.datasets")
        transforms = importlib.import_module("torchvision.transforms")
    except ImportError as exc:
        raise DataError("torchvision is not installed: pip install 'snnplug[vision]'") from exc
    cls = getattr(datasets, cls_name, None)
    if cls is None:
        raise DataError(f"torchvision.datasets has no {cls_name!r}")
    tf = transforms.ToTensor()
    try:
        train = cls(str(root), train=True, download=False, transform=tf)
        test = cls(str(root), train=False, download=False, transform=tf)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise DataError(
            f"torchvision {cls_name} files not found under {root} ({exc}); place the files as "
            f"torchvision.datasets.{cls_name}(root={str(root)!r}, download=True) would (e.g. "
            f"{root}/{cls_name}/raw/... for MNIST-style datasets) on a machine with internet, then copy them"
        ) from exc
    x0, _ = train[0]
    targets = getattr(train, "targets", None)
    classes = len(getattr(train, "classes", [])) or int(max(targets)) + 1
    return train, test, tuple(x0.shape), classes


class NMNISTFrames:
    """N-MNIST from the extracted tonic layout, framed into ``T`` bins per sample."""

    sensor_size = (34, 34, 2)

    def __init__(self, folder: Path, T: int) -> None:
        from tonic import transforms
        from tonic.io import read_mnist_file

        self._read = read_mnist_file
        self._frame = transforms.ToFrame(sensor_size=self.sensor_size, n_time_bins=T)
        self.files = sorted(folder.glob("[0-9]/*.bin"))
        self.targets = [int(p.parent.name) for p in self.files]
        self.dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        events = self._read(str(self.files[i]), dtype=self.dtype)
        return torch.from_numpy(self._frame(events).astype(np.float32)), self.targets[i]


def _tonic(cls_name: str, root: Path, T: int) -> tuple[Any, Any, tuple[int, ...], int]:
    try:
        tonic = importlib.import_module("tonic")
    except ImportError as exc:
        raise DataError("tonic is not installed: pip install 'snnplug[events]'") from exc
    if cls_name == "NMNIST":
        base = root / "NMNIST"
        sets = [base / "Train", base / "Test"]
        for s in sets:
            if not s.is_dir() or not any(s.glob("[0-9]/*.bin")):
                raise DataError(f"N-MNIST files missing: expected {NMNIST_LAYOUT} (root={root}); nothing is downloaded")
        train, test = NMNISTFrames(sets[0], T), NMNISTFrames(sets[1], T)
        return train, test, (2, 34, 34), 10
    cls = getattr(tonic.datasets, cls_name, None)
    if cls is None:
        raise DataError(f"tonic.datasets has no {cls_name!r}")
    if not (root / cls_name).is_dir():
        raise DataError(f"tonic {cls_name} files missing: expected the extracted dataset under {root / cls_name}")
    sensor = cls.sensor_size
    frame = tonic.transforms.ToFrame(sensor_size=sensor, n_time_bins=T)
    try:
        train = cls(str(root), train=True, transform=frame)
        test = cls(str(root), train=False, transform=frame)
    except Exception as exc:  # tonic tries to download when files are incomplete; we are offline
        raise DataError(f"tonic {cls_name} under {root} is incomplete and tonic tried to download it ({exc})") from exc
    classes = len(getattr(cls, "classes", [])) or 10
    return train, test, (sensor[2], sensor[1], sensor[0]), classes
