"""End to end: the CLI as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SNNPLUG = [sys.executable, "-W", "ignore", "-m", "snnplug"]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([*SNNPLUG, *args], capture_output=True, text=True, timeout=1200)
    if check:
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


def test_run_every_method_one_epoch(tmp_path):
    out = tmp_path / "run"
    _cli("run", "--epochs", "1", "--out", str(out), "--no-progress", "--threads", "1")
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == 1 and res["dataset"] == "digits" and res["failed"] == {}
    assert set(res["methods"]) == {"bptt", "dsr", "bntt", "opi-ann", "noise"}
    for name, r in res["methods"].items():
        assert r["T"] >= 1 and len(r["accuracy_vs_T"]) == r["T"], name
        assert 0.0 <= r["accuracy"] <= 1.0 and r["accuracy"] == r["accuracy_vs_T"][str(r["T"])]
        for key in ("train_seconds", "peak_rss_mb", "spikes_per_sample", "energy_uj", "ann_energy_uj"):
            assert isinstance(r[key], (int, float)) and r[key] >= 0, (name, key)
        assert r["spike_rates"] and all(0.0 <= v <= 1.0 for v in r["spike_rates"].values()), name
    assert {"accuracy_vs_T.png", "firing_rate.png"} <= set(res["plots"])
    for png in res["plots"]:
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png


def test_train_resume_evaluate_and_errors(tmp_path):
    out = tmp_path / "bptt"
    _cli("train", "--strategy", "bptt", "--epochs", "1", "--limit", "256", "--out", str(out), "--no-progress")
    r = _cli("train", "--strategy", "bptt", "--epochs", "2", "--limit", "256", "--out", str(out), "--resume",
             "--no-progress")
    assert "│ 2 " in r.stdout
    r = _cli("evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--T", "1,4", "--limit", "256")
    assert "accuracy" in r.stdout
    r = _cli("train", "--strategy", "nope", check=False)
    assert r.returncode == 2 and "unknown strategy 'nope'; known: " in r.stderr
    r = _cli("train", "--strategy", "bptt", "--dataset", "fashion-mnist", "--data-root", str(tmp_path / "x"),
             check=False)
    assert r.returncode == 2 and "not found" in r.stderr
    r = _cli("plugins", "--json")
    names = {p["name"] for p in json.loads(r.stdout)["plugins"]}
    assert {"dsr-if", "bntt", "opi", "noise-multistep", "bptt"} <= names


def test_compare_command_writes_json_and_table(tmp_path):
    out = tmp_path / "cmp"
    r = _cli("compare", "--T", "4", "--repeats", "1", "--limit", "64", "--out", str(out))
    res = json.loads((out / "compare.json").read_text())
    fw = res["frameworks"]
    assert fw["T"] == 4 and fw["spike_mismatches"] == 0 and "snnTorch loop vs SpikingJelly" in r.stdout
    rows = {row["method"]: row for row in res["methods"]}
    # same weights and inputs: snnplug's DSR and BNTT reproduce SpikingJelly's built-ins
    assert rows["dsr-if vs neuron.DSRIFNode"]["output_agreement"] == 1.0
    assert rows["bntt vs layer.BatchNormThroughTime2d"]["max_abs_output_diff"] < 1e-4
