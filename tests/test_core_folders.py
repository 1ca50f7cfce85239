"""torchvision/tonic folder datasets on small files written here in the real on-disk layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnplug.data import load_dataset
from snnplug.errors import DataError

from .test_core_data import write_idx  # noqa: TID252


def _nmnist_bin(events: list[tuple[int, int, int, int]]) -> bytes:
    """N-MNIST's 40-bit event format: x(8) y(8) p(1) t(23), big-endian."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


@pytest.fixture
def nmnist_root(tmp_path):
    for split in ("Train", "Test"):
        for digit in (3, 7):
            d = tmp_path / "NMNIST" / split / str(digit)
            d.mkdir(parents=True)
            # digit 3: two ON events at (x=1, y=2) early, one ON at (0, 0) late;
            # digit 7: one ON at (0, 0) early, two OFF events at (5, 6) late.
            if digit == 3:
                ev = [(1, 2, 1, 10), (1, 2, 1, 20), (0, 0, 1, 700)]
            else:
                ev = [(0, 0, 1, 0), (5, 6, 0, 900), (5, 6, 0, 990)]
            ev.append((0, 0, 1, 1000))  # tonic bins [t_first, t_last): the last event only sets the span
            (d / "00001.bin").write_bytes(_nmnist_bin(ev))
    return tmp_path


def test_tonic_nmnist_frames_from_real_layout(nmnist_root):
    b = load_dataset("tonic:NMNIST", nmnist_root, T=2)
    assert b.frames and b.input_shape == (2, 34, 34) and len(b.train) == 2
    x3, y3 = b.train[0]
    x7, y7 = b.train[1]
    assert (y3, y7) == (3, 7) and x3.shape == (2, 2, 34, 34)
    # tonic's ToFrame: [T, polarity, y, x], time bins [0, 500) and [500, 1000) here
    assert x3[0, 1, 2, 1] == 2 and x3[0].sum() == 2 and x3[1, 1, 0, 0] == 1 and x3[1].sum() == 1
    assert x7[0, 1, 0, 0] == 1 and x7[0].sum() == 1 and x7[1, 0, 6, 5] == 2 and x7[1].sum() == 2


def test_tonic_missing_files_raise_instead_of_downloading(tmp_path):
    with pytest.raises(DataError, match=r"N-MNIST files missing: expected <root>/NMNIST/Train"):
        load_dataset("tonic:NMNIST", tmp_path, T=4)
    with pytest.raises(DataError, match="pass T"):
        load_dataset("tonic:NMNIST", tmp_path)
    with pytest.raises(DataError, match="files missing"):
        load_dataset("tonic:DVSGesture", tmp_path, T=4)
    with pytest.raises(DataError, match="pass root"):
        load_dataset("tonic:NMNIST", None, T=4)


def test_torchvision_mnist_from_raw_folder(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(6, dtype=np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    b = load_dataset("torchvision:MNIST", tmp_path)
    x, y = b.train[4]
    assert b.input_shape == (1, 28, 28) and y == 4 and isinstance(x, torch.Tensor)
    with pytest.raises(DataError, match="CIFAR10 files not found"):
        load_dataset("torchvision:CIFAR10", tmp_path)
