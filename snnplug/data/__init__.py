"""Datasets, all offline. Nothing here downloads.

``load_dataset(name, root=None)`` returns a :class:`DatasetBundle`:

* ``"digits"`` (default): scikit-learn's embedded 8x8 digits (1797 real samples), 1x8x8 in [0, 1].
* ``"fashion-mnist"``: IDX files from ``root`` or, by default, the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), 1x28x28 in [0, 1].
* ``"mnist-idx"``: MNIST IDX files from ``root`` (required).
* a folder path holding the four IDX files.
* ``"torchvision:<Class>"`` / ``"tonic:<Class>"``: read from ``root``; see :mod:`snnplug.data.folders`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnplug.errors import DataError

FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("digits", "fashion-mnist", "mnist-idx")


@dataclass
class DatasetBundle:
    """Train/test datasets with what a model builder needs to know."""

    name: str
    train: Any  # torch Dataset yielding (x, y)
    test: Any
    input_shape: tuple[int, ...]
    num_classes: int
    frames: bool = False  # True: samples are event frames [T, ...] (time-major after batching: [B, T, ...])
    #: what ``load_dataset`` needs to load the same data again: the name or the folder's full path,
    #: and the data root's full path (stored in checkpoints; ``evaluate``/``convert`` reuse it)
    source: str | None = None
    root: str | None = None
    limit: int | None = None


def check_labels(name: str, train_y: np.ndarray, test_y: np.ndarray, num_classes: int | None = None) -> int:
    """Validate integer class labels ``[N]``; returns the number of classes.

    Labels must be 1-D integers in ``[0, classes)``. Without a known class count (a folder of IDX
    files) every class ``0 .. max`` must occur in the training labels, so a stray label (200 in a
    10-class set) is refused instead of silently training 201 classes.
    """
    for split, y in (("training", train_y), ("test", test_y)):
        if y.ndim != 1:
            raise DataError(f"{name}: {split} labels must be 1-D class indices [N], got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{name}: {split} labels must be integers, got {y.dtype}")
        if len(y) and int(y.min()) < 0:
            raise DataError(f"{name}: {split} labels must be >= 0, found {int(y.min())}")
    if len(train_y) == 0:
        raise DataError(f"{name}: the training set is empty")
    if num_classes is None:
        num_classes = int(train_y.max()) + 1
        present = np.bincount(train_y.astype(np.int64), minlength=num_classes)
        missing = np.flatnonzero(present == 0)
        if len(missing):
            shown = ", ".join(str(int(c)) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(
                f"{name}: training labels run up to {num_classes - 1} but classes {shown} have no "
                f"training sample ({len(missing)} of {num_classes}); labels must be 0..K-1 for K classes "
                f"(a stray label such as {num_classes - 1} would add classes)")
    for split, y in (("training", train_y), ("test", test_y)):
        if len(y) and int(y.max()) >= num_classes:
            raise DataError(f"{name}: {split} label {int(y.max())} is outside [0, {num_classes}); labels must "
                            f"be class indices below the number of classes")
    return num_classes


def _tensor_bundle(name: str, trx: np.ndarray, try_: np.ndarray, tex: np.ndarray, tey: np.ndarray,
                   scale: float, limit: int | None, *, source: str | None = None, root: str | None = None,
                   num_classes: int | None = None) -> DatasetBundle:
    import torch
    from torch.utils.data import TensorDataset

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive number of training samples, got {limit!r}")
    if trx.shape[1:] != tex.shape[1:]:
        raise DataError(f"{name}: test images are {tex.shape[1:]} but training images are {trx.shape[1:]}; "
                        f"both splits must have one image size")
    classes = check_labels(name, try_, tey, num_classes)
    if limit is not None:
        trx, try_ = trx[:limit], try_[:limit]
        tex, tey = tex[: max(1, limit // 5)], tey[: max(1, limit // 5)]

    def to_x(a: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / scale)
        return x.unsqueeze(1) if x.dim() == 3 else x

    train = TensorDataset(to_x(trx), torch.from_numpy(try_.astype(np.int64)))
    test = TensorDataset(to_x(tex), torch.from_numpy(tey.astype(np.int64)))
    return DatasetBundle(name, train, test, tuple(train.tensors[0].shape[1:]), classes,
                         source=source or name, root=root, limit=limit)


def load_digits(limit: int | None = None, seed: int = 0) -> DatasetBundle:
    """scikit-learn digits, a stratified 80/20 split fixed by ``seed``."""
    from sklearn.datasets import load_digits as _ld
    from sklearn.model_selection import train_test_split

    d = _ld()
    x = d.images.astype(np.float32)  # [N, 8, 8] in 0..16
    trx, tex, try_, tey = train_test_split(x, d.target, test_size=0.2, random_state=seed, stratify=d.target)
    return _tensor_bundle("digits", trx, try_, tex, tey, 16.0, limit, num_classes=10)


def load_idx(folder: str | Path, name: str, limit: int | None = None, *, source: str | None = None,
             num_classes: int | None = None) -> DatasetBundle:
    from snnplug.data.idx import load_idx_folder

    trx, try_, tex, tey = load_idx_folder(folder)
    return _tensor_bundle(name, trx, try_, tex, tey, 255.0, limit, source=source,
                          root=str(Path(folder).expanduser().resolve()), num_classes=num_classes)


def load_dataset(name: str = "digits", root: str | Path | None = None, *, limit: int | None = None,
                 T: int | None = None, seed: int = 0) -> DatasetBundle:
    """Load a dataset by name (see the module docstring). ``limit`` caps the training set
    (test: ``limit // 5``) for quick runs; ``T`` is the frame count for event datasets."""
    if name == "digits":
        return load_digits(limit, seed)
    if name == "fashion-mnist":
        folder = Path(root) if root is not None else FASHION_MNIST_DEBIAN
        if not folder.is_dir():
            raise DataError(
                f"Fashion-MNIST folder {folder} not found: install the Debian package "
                f"(apt-get install -y dataset-fashion-mnist) or pass --data-root with the IDX files"
            )
        return load_idx(folder, "fashion-mnist", limit, source="fashion-mnist", num_classes=10)
    if name in ("mnist-idx", "mnist"):
        if root is None:
            raise DataError("mnist-idx needs a folder: pass root=/path/with/idx/files (--data-root)")
        return load_idx(root, "mnist", limit, source="mnist-idx")
    if ":" in name:
        from snnplug.data import folders

        return folders.load(name, root, limit=limit, T=T)
    path = Path(name).expanduser()
    if path.is_dir():
        full = str(path.resolve())
        return load_idx(path, path.name, limit, source=full)
    raise DataError(
        f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, a folder with IDX files, "
        f"'torchvision:<Class>' or 'tonic:<Class>' with a data root"
    )


def make_loaders(bundle: DatasetBundle, batch_size: int = 64, *, seed: int = 0,
                 eval_batch_size: int = 256) -> tuple[Any, Any]:
    """Seeded shuffling train loader and an ordered test loader."""
    import torch
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(seed)
    train = DataLoader(bundle.train, batch_size=batch_size, shuffle=True, generator=g, drop_last=False)
    test = DataLoader(bundle.test, batch_size=eval_batch_size, shuffle=False)
    return train, test
