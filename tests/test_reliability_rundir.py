"""A run folder belongs to one run; resuming checks that it is the same run."""

from __future__ import annotations

import errno
import math
import os

import numpy as np
import pytest
import torch

import snnplug
from snnplug.data import load_dataset
from snnplug.engine import TrainConfig, load_checkpoint, save_checkpoint, train
from snnplug.engine.rundir import RunFolderError, claim
from snnplug.engine.seed import seed_everything
from snnplug.errors import CheckpointError


def _run(out, dataset="digits", root=None, limit=128, **kw):
    s = snnplug.strategy("bptt", T=2)
    b = load_dataset(dataset, root, limit=limit)
    seed_everything(kw.get("seed", 3))
    m = s.build_model(b.input_shape, b.num_classes)
    cfg = {"epochs": 1, "batch_size": 32, "out_dir": out, "progress": False, "seed": 3, **kw}
    return train(s, m, b, TrainConfig(**cfg))


def test_second_run_into_a_folder_is_refused_unless_resume_or_force(tmp_path):
    _run(tmp_path)
    ckpt = tmp_path / "checkpoint.pt"
    first = ckpt.read_bytes()
    with pytest.raises(RunFolderError, match=r"already holds a run's checkpoint .*; pass --resume to continue that "
                                             r"run, --force to replace it, or choose another --out"):
        _run(tmp_path, seed=4)
    assert ckpt.read_bytes() == first  # untouched
    _run(tmp_path, seed=4, force=True)
    assert load_checkpoint(ckpt)["run"]["seed"] == 4
    with pytest.raises(RunFolderError, match="--resume continues the run in the folder and --force replaces it"):
        _run(tmp_path, seed=4, force=True, resume=True)


def test_concurrent_writer_is_refused(tmp_path):
    with claim(tmp_path):  # another run holds the folder (flock conflicts across open files)
        with pytest.raises(RunFolderError, match=rf"in use by another snnplug run \(pid {os.getpid()}\)"):
            _run(tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()
    _run(tmp_path)  # released: the folder can be used again


def test_unwritable_out_fails_before_training(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    calls = []
    s = snnplug.strategy("bptt", T=2)
    original = s.loss
    s.loss = lambda *a: calls.append(1) or original(*a)
    b = load_dataset("digits", limit=64)
    m = s.build_model(b.input_shape, b.num_classes)
    with pytest.raises(RunFolderError, match=r"output folder .*a_file/run is not writable \(.*\); choose another --out"):
        train(s, m, b, TrainConfig(out_dir=tmp_path / "a_file" / "run", progress=False))
    assert calls == []


def test_failed_checkpoint_write_leaves_no_temporary_and_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"strategy": "x", "strategy_config": {}, "model": {}, "epoch": 1})
    old = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .* \(No space left on device\); the "
                                              r"previous checkpoint, if any, is intact"):
        save_checkpoint(path, {"strategy": "x", "strategy_config": {}, "model": {}, "epoch": 2})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert path.read_bytes() == old


def test_temporaries_of_a_killed_writer_are_removed(tmp_path):
    _run(tmp_path)
    stale = tmp_path / ".checkpoint.pt.99999.tmp"  # what a run killed inside torch.save leaves
    stale.write_bytes(b"half a checkpoint")
    _run(tmp_path, resume=True)  # the run is complete: nothing to train, but the folder is claimed
    assert not stale.exists()


# -- resume -----------------------------------------------------------------------------------
@pytest.mark.parametrize("field,change,message", [
    ("batch_size", {"batch_size": 64}, r"batch_size was 32 in that run, now 64; resume with --batch-size 32"),
    ("seed", {"seed": 9}, r"seed was 3 in that run, now 9; resume with --seed 3"),
    ("lr", {"lr": 0.01}, r"lr was 0.001 in that run, now 0.01; resume with --lr 0.001"),
    ("limit", {"limit": 96}, r"it was trained on dataset digits \(limit 128, 128 training samples\), not digits "
                             r"\(limit 96, 96 training samples\) \(differs in limit, train_size, train_sha256, "
                             r"test_sha256\); resume with the same --dataset/--data-root/--limit"),
])
def test_resume_with_another_setting_is_refused(tmp_path, field, change, message):
    _run(tmp_path)
    with pytest.raises(CheckpointError, match=rf"cannot resume .*checkpoint.pt: {message}"):
        _run(tmp_path, resume=True, **{"epochs": 2, **change})


def write_idx(path, arr: np.ndarray) -> None:
    """An uncompressed IDX file: magic 0x0000TTNN, big-endian sizes, then the data."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.tobytes())


def _idx_folder(folder, seed):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (64, 8, 8), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(64) % 10).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 8, 8), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8))
    return folder


def test_resume_on_another_folder_with_the_same_basename_is_refused(tmp_path):
    a = _idx_folder(tmp_path / "a" / "good", 0)
    b = _idx_folder(tmp_path / "b" / "good", 1)
    _run(tmp_path / "run", str(a), limit=None)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["dataset"]["source"] == str(a.resolve())  # the full path, not 'good'
    with pytest.raises(CheckpointError, match=rf"trained on dataset {a.resolve()} .* not {b.resolve()} .*differs "
                                              rf"in source, train_sha256, test_sha256"):
        _run(tmp_path / "run", str(b), limit=None, resume=True, epochs=2)


def test_longer_epochs_replans_the_cosine_schedule(tmp_path):
    _run(tmp_path, epochs=1)  # 4 steps, cosine over 4 steps: lr is 0 at the end
    lr0, steps = 1e-3, 4
    new = lr0 * (1 + math.cos(math.pi * steps / (2 * steps))) / 2  # the 2-epoch curve at step 4: lr0/2
    with pytest.warns(UserWarning, match=rf"resuming .* with --epochs 2 instead of the planned 1: the learning-rate "
                                         rf"schedule is re-planned over 2 epochs at step 4; lr 0 -> {new:.3g}"):
        res = _run(tmp_path, epochs=2, resume=True)
    assert [h["epoch"] for h in res.history] == [1, 2]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["scheduler"]["T_max"] == 8 and state["scheduler"]["last_epoch"] == 8
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(CheckpointError, match=r"with --epochs 1: that run has already trained 2 epoch\(s\); pass a "
                                              r"larger --epochs \(it was planned for 2\)"):
        _run(tmp_path, epochs=1, resume=True)


def test_same_epochs_resume_stays_bit_identical(tmp_path):
    full = _run(tmp_path / "full", epochs=2)
    _run(tmp_path / "cut", epochs=2, max_steps=5)
    resumed = _run(tmp_path / "cut", epochs=2, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(),
                                                  resumed.model.state_dict().values(), strict=True))
