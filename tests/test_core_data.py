"""Data: IDX reading on files written here, folder errors, digits, encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnplug.data import FASHION_MNIST_DEBIAN, load_dataset
from snnplug.data.encoders import direct, frames_to_time_major, poisson
from snnplug.data.idx import read_idx
from snnplug.errors import DataError, ShapeError, TimeStepError

from .conftest import write_idx  # noqa: TID252


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    tr = rng.integers(0, 256, (20, 5, 6), dtype=np.uint8)
    te = rng.integers(0, 256, (7, 5, 6), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", tr, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", (np.arange(20) % 3).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", te)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", (np.arange(7) % 3).astype(np.uint8), gz=True)
    return tmp_path, tr, te


def test_idx_folder_round_trip(idx_folder):
    folder, tr, te = idx_folder
    b = load_dataset("mnist-idx", folder)
    assert b.input_shape == (1, 5, 6) and b.num_classes == 3
    x, y = b.train.tensors
    assert torch.equal(x[:, 0], torch.from_numpy(tr.astype(np.float32) / 255))
    assert y.tolist() == [i % 3 for i in range(20)]
    assert torch.equal(b.test.tensors[0][:, 0], torch.from_numpy(te.astype(np.float32) / 255))
    # a folder path works as a dataset name too
    assert load_dataset(str(folder)).input_shape == (1, 5, 6)


def test_idx_errors(tmp_path, idx_folder):
    folder, _, _ = idx_folder
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + (7).to_bytes(4, "big") * 3 + b"\x01")
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist-idx", folder)
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)


def test_missing_folders_and_unknown_names(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist-idx", tmp_path / "nowhere")
    with pytest.raises(DataError, match="needs a folder"):
        load_dataset("mnist-idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path / "empty")
    with pytest.raises(DataError, match="unknown dataset 'cifar'; choose one of digits"):
        load_dataset("cifar")


def test_digits_is_real_embedded_data():
    b = load_dataset("digits")
    x, y = b.train.tensors
    assert len(b.train) == 1437 and len(b.test) == 360 and b.input_shape == (1, 8, 8)
    assert 0.0 <= float(x.min()) and float(x.max()) == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


@pytest.mark.skipif(not FASHION_MNIST_DEBIAN.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    b = load_dataset("fashion-mnist", limit=100)
    assert b.input_shape == (1, 28, 28) and len(b.train) == 100 and len(b.test) == 20


def test_direct_and_frames_encoders():
    x = torch.rand(3, 2, 4)
    seq = direct(x, 5)
    assert seq.shape == (5, 3, 2, 4) and all(torch.equal(s, x) for s in seq)
    with pytest.raises(ShapeError):
        direct(torch.rand(3), 2)
    frames = torch.rand(2, 6, 1, 4)
    assert torch.equal(frames_to_time_major(frames, 6)[3], frames[:, 3])
    with pytest.raises(TimeStepError, match="yields 6 frames per sample but T=5"):
        frames_to_time_major(frames, 5)


def test_poisson_is_signed_bernoulli_with_rate_abs_x():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([[-1.0, -0.25, 0.0, 0.5, 1.0]])
    s = poisson(x, 20000, generator=g)
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.all(s * torch.sign(x) >= 0)  # spikes carry the sign of the pixel
    rate = s.mean(0)[0]
    assert torch.allclose(rate, x[0], atol=0.015)
