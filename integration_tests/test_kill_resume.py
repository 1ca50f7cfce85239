"""A real training process killed mid-epoch (SIGTERM, SIGKILL) resumes to the weights of an
uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from snnplug.engine import load_checkpoint

ARGS = ["train", "--strategy", "bptt", "--epochs", "2", "--limit", "512", "--batch-size", "32",
        "--no-progress", "--threads", "1", "--seed", "7", "--checkpoint-every", "3"]
CMD = [sys.executable, "-W", "ignore", "-m", "snnplug", *ARGS]


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_resumes_to_identical_weights(tmp_path, sig):
    full = subprocess.run([*CMD, "--out", str(tmp_path / "full")], capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen([*CMD, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = out / "checkpoint.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
    state = load_checkpoint(ckpt)  # never torn
    assert state["global_step"] < 32  # 512 / 32 * 2 epochs: it really stopped early

    resumed = subprocess.run([*CMD, "--out", str(out), "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(tmp_path / "full" / "checkpoint.pt"), _weights(ckpt)
    assert all(torch.equal(a[k], b[k]) for k in a)
