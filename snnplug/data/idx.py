"""IDX files (MNIST, Fashion-MNIST) read with numpy; ``.gz`` or plain."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from snnplug.errors import DataError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (magic ``0x0000TTNN``: type code TT, NN dimensions, big-endian sizes)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a corrupt or truncated gzip file ({exc}); re-extract or re-copy it") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
    ndim = data[3]
    offset = 4 + 4 * ndim
    if ndim == 0 or len(data) < offset:
        raise DataError(f"{path} has a broken IDX header ({ndim} dimensions, {len(data)} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    count = math.prod(dims)  # Python ints: header sizes near 2**32 cannot overflow
    if len(data) - offset < count * dtype.itemsize:
        raise DataError(f"{path} is truncated: header says {dims}, file holds {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def find_idx(folder: Path, stem: str) -> Path:
    for cand in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")):
        if cand.is_file():
            return cand
    raise DataError(
        f"missing {stem}[.gz] in {folder}; an IDX folder holds the four files "
        f"{', '.join(IDX_FILES.values())} (optionally gzipped)"
    )


def load_idx_folder(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x uint8 [N,H,W], train_y, test_x, test_y) from an MNIST-layout folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist; pass the folder holding the IDX files")
    arrays = [read_idx(find_idx(folder, stem)) for stem in IDX_FILES.values()]
    trx, try_, tex, tey = arrays
    for what, x in (("training images", trx), ("test images", tex)):
        if x.ndim not in (3, 4):
            raise DataError(f"{folder}: {what} must be [N, H, W] or [N, C, H, W], got shape {x.shape}")
    if len(trx) != len(try_) or len(tex) != len(tey):
        raise DataError(f"{folder}: images and labels disagree in count")
    return trx, try_, tex, tey
