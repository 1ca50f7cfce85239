"""snnplug run's report from a hand-made results.json: table rows, t to 99%, own networks."""

from __future__ import annotations

from snnplug.app import run_report
from snnplug.app.run_method import checkpoints


def _method(T: int, curve: list[float], shared: bool = True, own: str = "") -> dict:
    ts = checkpoints(T)
    return {"T": T, "shared_backbone": shared, "own_network": own, "network": ["Linear(64->10)"],
            "settings": {"T": T}, "epochs": 2, "accuracy": curve[-1],
            "accuracy_vs_T": {str(t + 1): a for t, a in enumerate(curve)}, "train_seconds": 1.25,
            "train_memory_mb": 3.5, "synaptic_ops": 1000.0, "energy_uj": 0.8, "spike_rates": {"1": 0.1},
            "energy_vs_T": {str(t): {"energy_uj": 0.1 * t} for t in ts}, "extra": {}}


def _results() -> dict:
    return {"dataset": "digits", "device": "cpu", "train_samples": 10, "test_samples": 5, "wall_seconds": 3.0,
            "failed": {}, "backbone": {"spec": {"hidden": 8}, "layers": ["Linear(64->8)", "Linear(8->10)"],
                                       "ann_energy_uj": 1.6, "ann_macs": 592.0},
            "methods": {"a": _method(3, [0.5, 0.9, 0.905]),
                        "b": _method(5, [0.1, 0.2, 0.99, 0.98, 1.0], shared=False, own="it needs 3D input")}}


def test_checkpoints_are_powers_of_two_then_T():
    assert checkpoints(1) == [1] and checkpoints(4) == [1, 2, 4] and checkpoints(20) == [1, 2, 4, 8, 16, 20]


def test_summary_rows_read_the_curves():
    res = _results()
    heads, rows = run_report.summary_rows(res)
    assert heads[:7] == ["method", "network", "T", "acc t=1 %", "acc t=2 %", "acc t=4 %", "acc t=5 %"]
    a, b = rows
    assert a[:7] == ["a", "shared", "3", "50.0", "90.0", "-", "-"]  # a ran 3 steps only
    assert b[:7] == ["b", "own", "5", "10.0", "20.0", "98.0", "100.0"]
    col = heads.index("t to 99% of final")
    assert a[col] == "2" and b[col] == "3"  # 0.9 >= 0.99 * 0.905; 0.99 >= 0.99 * 1.0
    assert a[heads.index("SNN/ANN energy")] == "0.50x"  # 0.8 uJ vs the backbone's 1.6 uJ


def test_report_names_an_own_network_and_shows_the_shared_one():
    page = run_report.html_report(_results(), {"x.png": b"\x89PNG"})
    assert "it needs 3D input" in page and "Linear(64-&gt;8) - Linear(8-&gt;10)" in page
    assert 'src="data:image/png;base64,iVBORw==' in page and "<td>b</td>" in page
