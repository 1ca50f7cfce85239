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
    """`snnplug run` on digits (one epoch per method to stay quick): results.json and a
    self-contained report.html, every default method on the shared backbone, one line per epoch
    on a non-terminal stdout, nothing on stderr at exit (no warnings)."""
    from snnplug.models import backbone_for
    from snnplug.registry import get_registry

    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "snnplug", "run", "--epochs", "1", "--out", str(out), "--jobs", "2"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stderr.strip() == ""  # no warnings (leaked semaphores, profiler logs) at exit
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == 2 and res["dataset"] == "digits" and res["failed"] == {}
    defaults = {rec.name for rec in get_registry().all() if rec.family == "strategy" and rec.in_default_run}
    assert set(res["methods"]) == defaults == {"bptt", "dsr", "bntt", "opi-ann", "noise"}
    spec = backbone_for((1, 8, 8))
    assert res["backbone"]["spec"] == spec and res["backbone"]["ann_energy_uj"] > 0
    for name, m in res["methods"].items():
        assert f"{name} epoch 1/1: loss " in r.stdout and "%" in r.stdout
        assert m["shared_backbone"] is True and m["own_network"] == "", name
        assert m["network"] == res["backbone"]["layers"], name  # the same synaptic layers as the ANN
        assert {k: m["settings"][k] for k in spec} == spec and m["epochs"] == 1
        curve = m["accuracy_vs_T"]
        assert list(curve) == [str(t) for t in range(1, m["T"] + 1)], name
        assert all(0.0 <= a <= 1.0 for a in curve.values()) and m["accuracy"] == curve[str(m["T"])]
        assert m["ann_energy_uj"] == pytest.approx(res["backbone"]["ann_energy_uj"])
        ts = [int(t) for t in m["energy_vs_T"]]
        assert ts[0] == 1 and ts[-1] == m["T"] and ts == sorted(ts)
        energies = [v["energy_uj"] for v in m["energy_vs_T"].values()]
        assert energies == sorted(energies) and energies[-1] == pytest.approx(m["energy_uj"])
        assert m["train_memory_mb"] > 0 and m["train_seconds"] > 0
        assert m["spike_rates"] and all(0.0 <= v <= 1.0 for v in m["spike_rates"].values()), name
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(res["plots"]) >= 6
    assert {"accuracy_vs_T.png", "accuracy_vs_energy.png", "firing_rate.png"} <= set(res["plots"])
    assert all(f"<td>{name}</td>" in page for name in res["methods"]) and "45 nm" in page
    assert not any("noise_noise" in p for p in res["plots"])


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
