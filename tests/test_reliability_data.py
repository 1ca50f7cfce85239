"""Bad data files and labels give a DataError naming the problem, never a silent wrong dataset."""

from __future__ import annotations

import numpy as np
import pytest

from snnplug.data import load_dataset
from snnplug.data.idx import read_idx
from snnplug.errors import DataError

from .conftest import write_idx  # noqa: TID252


def folder(tmp_path, train_y=None, test_y=None, test_hw=(5, 6)):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 5, 6), dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (7, *test_hw), dtype=np.uint8))
    tr = (np.arange(20) % 3).astype(np.uint8) if train_y is None else train_y
    te = (np.arange(7) % 3).astype(np.uint8) if test_y is None else test_y
    write_idx(tmp_path / "train-labels-idx1-ubyte", tr)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", te)
    return tmp_path


def test_a_stray_label_is_refused_not_trained_as_201_classes(tmp_path):
    y = (np.arange(20) % 3).astype(np.uint8)
    y[7] = 200
    with pytest.raises(DataError, match=r"training labels run up to 200 but classes 3, 4, 5, 6, 7 \.\.\. have no "
                                        r"training sample \(197 of 201\); labels must be 0\.\.K-1"):
        load_dataset("mnist-idx", folder(tmp_path, train_y=y))


def test_test_label_outside_the_training_classes(tmp_path):
    te = (np.arange(7) % 3).astype(np.uint8)
    te[2] = 3
    with pytest.raises(DataError, match=r"test label 3 is outside \[0, 3\)"):
        load_dataset("mnist-idx", folder(tmp_path, test_y=te))


def test_fashion_mnist_labels_must_be_below_ten(tmp_path):
    y = (np.arange(20) % 10).astype(np.uint8)
    y[0] = 10
    with pytest.raises(DataError, match=r"training label 10 is outside \[0, 10\)"):
        load_dataset("fashion-mnist", folder(tmp_path, train_y=y))


def test_negative_labels(tmp_path):
    y = (np.arange(20) % 3).astype(np.int8)
    y[4] = -1
    with pytest.raises(DataError, match=r"training labels must be >= 0, found -1"):
        load_dataset("mnist-idx", folder(tmp_path, train_y=y))


def test_two_dimensional_labels(tmp_path):
    y = (np.arange(20) % 3).astype(np.uint8).reshape(20, 1)
    with pytest.raises(DataError, match=r"training labels must be 1-D class indices \[N\], got shape \(20, 1\)"):
        load_dataset("mnist-idx", folder(tmp_path, train_y=y))


def test_test_images_of_another_size(tmp_path):
    with pytest.raises(DataError, match=r"test images are \(7, 7\) but training images are \(5, 6\)"):
        load_dataset("mnist-idx", folder(tmp_path, test_hw=(7, 7)))


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(20, np.uint8), gz=True)
    data = path.read_bytes()
    path.write_bytes(data[:12] + bytes(b ^ 0xFF for b in data[12:]))  # flip the deflate stream
    with pytest.raises(DataError, match=r"is a corrupt or truncated gzip file"):
        read_idx(path)
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataError, match=r"is a corrupt or truncated gzip file"):
        read_idx(path)


def test_header_dimensions_that_overflow(tmp_path):
    path = tmp_path / "huge"
    # 3 dimensions of 2**32-1: the product overflows int64; the file holds 4 bytes of data
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"\xff\xff\xff\xff" * 3 + b"\x00" * 4)
    with pytest.raises(DataError, match=r"is truncated: header says \(4294967295, 4294967295, 4294967295\), "
                                        r"file holds 4 bytes"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"\x00\x00")  # the header itself is cut short
    with pytest.raises(DataError, match=r"has a broken IDX header \(3 dimensions, 6 bytes\)"):
        read_idx(path)


def test_limit_is_validated():
    with pytest.raises(DataError, match=r"limit must be a positive number of training samples, got -5"):
        load_dataset("digits", limit=-5)
