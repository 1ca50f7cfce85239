"""Faults under torchrun (2 CPU ranks, gloo): one failing or terminated rank ends every rank within
seconds with the error, nothing waits on a dead peer, and a SIGTERM leaves a checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from snnplug.engine import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SNNPLUG_DIST_TIMEOUT": "120"}
TORCHRUN = [sys.executable, "-W", "ignore", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
CLI = ["-m", "snnplug", "train", "--strategy", "bptt", "--no-progress", "--threads", "1", "--distributed"]
FAST = 90  # seconds: the old code waited for gloo's 30-minute timeout

WORKER = textwrap.dedent('''
    """torchrun worker: bptt on digits; rank 1 misbehaves at its second step (argv[1] says how)."""
    import os
    import sys
    import torch
    import torch.distributed as dist
    import snnplug
    from snnplug.data import load_dataset
    from snnplug.engine import TrainConfig, train_distributed
    from snnplug.engine.seed import seed_everything

    mode, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    s = snnplug.strategy("bptt", T=2)
    inner_loss = s.loss
    calls = []

    def loss(model, x, y):
        calls.append(1)
        value, logits = inner_loss(model, x, y)
        if dist.get_rank() == 1 and len(calls) == 2:
            if mode == "raise":
                raise RuntimeError("rank 1 broke on purpose")
            value = value * float("nan")
        return value, logits

    s.loss = loss
    b = load_dataset("digits", limit=256)
    seed_everything(0)
    m = s.build_model(b.input_shape, b.num_classes)
    res = train_distributed(s, m, b, TrainConfig(epochs=2, batch_size=64, out_dir=out, progress=False,
                                                 on_nonfinite="skip" if mode == "skip" else "raise"))
    os.write(1, f"rank {os.environ['RANK']} skipped {res.final['nonfinite_skipped']}\\n".encode())
''')


def _torchrun(*args: str, timeout: float = FAST) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    out = subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    return out, time.perf_counter() - t0


@pytest.fixture
def worker(tmp_path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def test_a_raising_rank_ends_every_rank_with_the_error(worker, tmp_path):
    out, seconds = _torchrun(str(worker), "raise", str(tmp_path / "run"))
    assert out.returncode != 0
    log = out.stdout + out.stderr
    assert "RuntimeError: rank 1 broke on purpose" in log
    assert "PeerFailedError: rank 1 failed at epoch 1, batch 2 of 4 (its error is printed above); rank 0 stopped with it" in log
    assert seconds < FAST


def test_nan_on_one_rank_stops_every_rank_or_is_skipped_by_all(worker, tmp_path):
    out, _ = _torchrun(str(worker), "nan", str(tmp_path / "nan"))
    log = out.stdout + out.stderr
    assert out.returncode != 0
    assert "NonFiniteError: epoch 1, batch 2 of 4: the loss is nan" in log  # rank 1
    assert "NonFiniteError: epoch 1, batch 2 of 4: another rank's slice of this batch gave NaN/Inf" in log  # rank 0
    out, _ = _torchrun(str(worker), "skip", str(tmp_path / "skip"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(out.stdout.split()) == sorted("rank 0 skipped 1 rank 1 skipped 1".split())  # same step on both
    state = load_checkpoint(tmp_path / "skip" / "checkpoint.pt")
    assert state["global_step"] == 7  # 2 epochs x 4 steps, one skipped
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_one_sample_last_global_batch_is_dropped(tmp_path):
    # 65 samples, global batch 64: the old code gave one rank an empty slice and a NaN loss, then hung
    out, _ = _torchrun(*CLI, "--limit", "65", "--batch-size", "64", "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["global_step"] == 1


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def test_sigterm_to_one_rank_checkpoints_and_ends_every_rank(tmp_path):
    args = [*CLI, "--limit", "512", "--batch-size", "16", "--epochs", "1", "--checkpoint-every", "4"]
    full, _ = _torchrun(*args, "--out", str(tmp_path / "full"), timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]

    out = tmp_path / "cut"
    proc = subprocess.Popen([*TORCHRUN, *args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.2)
    assert len(workers) == 2, "torchrun did not start two workers"
    while time.time() < deadline and not (out / "checkpoint.pt").exists():
        time.sleep(0.05)  # training has started (and the SIGTERM handler is installed)
    assert proc.poll() is None
    t0 = time.perf_counter()
    os.kill(workers[1], signal.SIGTERM)  # one rank only
    _, err = proc.communicate(timeout=FAST)
    assert time.perf_counter() - t0 < 30, "the ranks did not stop together within seconds"
    assert proc.returncode != 0
    state = load_checkpoint(out / "checkpoint.pt")
    assert 4 <= state["global_step"] < 32, state["global_step"]  # it stopped early, with a checkpoint

    resumed, _ = _torchrun(*args, "--out", str(out), "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = load_checkpoint(out / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs from the uninterrupted one"
