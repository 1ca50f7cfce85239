"""Two CPU processes under torchrun (gloo) reproduce one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from snnplug.engine import load_checkpoint

COMMON = ["train", "--strategy", "bptt", "--set", "norm=false", "--epochs", "1", "--limit", "256",
          "--batch-size", "64", "--no-progress", "--threads", "1", "--seed", "5"]


def test_two_gloo_ranks_equal_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-W", "ignore", "-m", "snnplug", *COMMON, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-W", "ignore", "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", "-m", "snnplug", *COMMON, "--distributed",
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=600)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    moved = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved < 1e-5, f"two ranks drifted from one process by {moved}"
    init = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    assert init["global_step"] == 4  # 256 samples / 64 per global batch
