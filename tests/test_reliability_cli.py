"""Every CLI error is one line on stderr with exit status 2; --debug adds the traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from snnplug.app import cli
from snnplug.engine import load_checkpoint, save_checkpoint


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv,message", [
    (["train", "--strategy", "bptt", "--T", "0"], "snnplug train: error: argument --T: must be a positive integer, got 0"),
    (["train", "--strategy", "bptt", "--T", "2147483648"], "argument --T: at most 100000 time steps, got 2147483648"),
    (["train", "--strategy", "bptt", "--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (["train", "--strategy", "bptt", "--lr", "-1"], "argument --lr: must be a positive finite number, got -1"),
    (["train", "--strategy", "bptt", "--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
    (["train", "--strategy", "bptt", "--threads", "-1"], "argument --threads: must be 0 or a positive integer, got -1"),
    (["train", "--strategy", "bptt", "--device", "garbage"], "argument --device: 'garbage' is not a device; use cpu, cuda or cuda:N"),
    (["train", "--strategy", "bptt", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["train", "--strategy", "bptt", "--limit", "-5"], "argument --limit: must be a positive integer, got -5"),
    (["train", "--strategy", "bptt", "--set", "tau"], "argument --set: expected key=value, got 'tau'"),
    (["train", "--strategy", "bptt", "--eval-T", "1,0"], "argument --eval-T: must be a positive integer, got 0"),
    (["evaluate", "--checkpoint", "x.pt", "--T", "a"], "argument --T: expected an integer, got 'a'"),
    (["run", "--T", "0"], "snnplug run: error: argument --T: must be a positive integer, got 0"),
    (["compare", "--repeats", "0"], "snnplug compare: error: argument --repeats: must be a positive integer, got 0"),
])
def test_bad_arguments(capsys, argv, message):
    rc, _, err = run_cli(capsys, *argv)
    assert message in one_line_error(rc, err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(capsys):
    rc, _, err = run_cli(capsys, "train", "--strategy", "bptt", "--device", "cuda")
    assert "'cuda': this machine has no CUDA device; use --device cpu" in one_line_error(rc, err)


@pytest.mark.parametrize("opt,message", [
    ("foo=1", "snnplug: error: unknown strategy option foo for 'bptt'; its options: T, channels, hidden, lr, neuron, norm, tau"),
    ("tau=-1", "snnplug: error: strategy 'bptt': tau must be > 1 (the LIF decay is 1/tau), got -1"),
    ("T=0", "snnplug: error: strategy 'bptt': T must be a positive int number of time steps, got 0"),
    ("neuron=xyz", "snnplug: error: strategy 'bptt': bptt neuron must be 'lif' or 'if', got 'xyz'"),
])
def test_strategy_options(capsys, tmp_path, opt, message):
    rc, _, err = run_cli(capsys, "train", "--strategy", "bptt", "--set", opt, "--out", str(tmp_path))
    assert one_line_error(rc, err) == message


def test_debug_prints_the_traceback(capsys):
    rc, _, err = run_cli(capsys, "train", "--debug", "--strategy", "bptt", "--set", "foo=1")
    assert rc == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("snnplug: error: unknown strategy option foo")


def test_unexpected_error_is_one_line_with_its_type(capsys, monkeypatch):
    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "cmd_plugins", boom)
    rc, _, err = run_cli(capsys, "plugins")
    assert one_line_error(rc, err) == ("snnplug: error: ZeroDivisionError: division by zero (run with --debug for the "
                                       "traceback)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bptt run on 64 digits, trained once for the checkpoint tests."""
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--strategy", "bptt", "--T", "2", "--epochs", "1", "--limit", "64", "--out",
                     str(out), "--no-progress"]) == 0
    return out / "checkpoint.pt"


def test_second_train_into_the_folder(capsys, trained):
    capsys.readouterr()
    rc, _, err = run_cli(capsys, "train", "--strategy", "bptt", "--T", "2", "--epochs", "1", "--limit", "64",
                         "--out", str(trained.parent), "--no-progress")
    assert "already holds a run's checkpoint" in one_line_error(rc, err)


def test_wrong_shape_checkpoint(capsys, trained, tmp_path):
    state = load_checkpoint(trained)
    key = next(k for k, v in state["model"].items() if v.dim() == 2)
    state["model"][key] = torch.zeros(3, 3)
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, state)
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(bad))
    line = one_line_error(rc, err)
    assert line.startswith(f"snnplug: error: checkpoint {bad} does not fit strategy 'bptt''s model for inputs [1, 8, 8]")
    assert f"size mismatch for {key}" in line


def write_idx(path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def idx_folder(path, n_train, n_test, hw, classes):
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    write_idx(path / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, *hw)))
    write_idx(path / "train-labels-idx1-ubyte", np.arange(n_train) % classes)
    write_idx(path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, *hw)))
    write_idx(path / "t10k-labels-idx1-ubyte", np.arange(n_test) % classes)
    return path


def test_evaluate_on_data_of_another_shape(capsys, trained, tmp_path):
    data = idx_folder(tmp_path / "small", 20, 7, (5, 6), 3)
    rc, _, err = run_cli(capsys, "evaluate", "--checkpoint", str(trained), "--dataset", str(data))
    assert one_line_error(rc, err) == (
        f"snnplug: error: dataset {data.name} has samples [1, 5, 6] and 3 classes, but the checkpoint was trained "
        f"on [1, 8, 8] with 10 classes; pass the checkpoint's dataset (--dataset digits)")


def test_evaluate_finds_a_folder_dataset_by_its_full_path(capsys, tmp_path, monkeypatch):
    idx_folder(tmp_path / "data" / "good", 40, 8, (6, 6), 4)
    monkeypatch.chdir(tmp_path / "data")
    assert cli.main(["train", "--strategy", "bptt", "--T", "2", "--epochs", "1", "--dataset", "good",
                     "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    monkeypatch.chdir(tmp_path)  # 'good' no longer resolves from here
    capsys.readouterr()
    rc, out, err = run_cli(capsys, "evaluate", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--T", "2")
    assert rc == 0, err
    assert "bptt on good" in out


def test_python_dash_m_snnplug():
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "snnplug", "train", "--strategy", "bptt",
                          "--batch-size", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == ("snnplug train: error: argument --batch-size: must be a positive integer, got 0 "
                                  "(see snnplug train --help)")
