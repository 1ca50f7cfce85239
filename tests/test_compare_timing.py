"""``snnplug.app.timing`` (warm-up, interleaved rounds, median/IQR) and the model probe's side effects."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from snnplug.app.timing import Stats, interleaved, paired_ratio


def test_stats_hand_computed():
    s = Stats.of([4.0, 1.0, 3.0, 2.0, 5.0])  # sorted 1..5: quartiles (inclusive) at 2 and 4
    assert (s.median, s.q1, s.q3, s.min, s.max, s.n) == (3.0, 2.0, 4.0, 1.0, 5.0, 5)
    s = Stats.of([1.0, 2.0, 3.0, 10.0])  # median 2.5; q1 = 1 + 0.75 * (2 - 1); q3 = 3 + 0.25 * (10 - 3)
    assert (s.median, s.q1, s.q3) == (2.5, 1.75, 4.75)
    assert Stats.of([2.0]).as_dict() == {"median": 2.0, "q1": 2.0, "q3": 2.0, "min": 2.0, "max": 2.0, "n": 1}


def test_paired_ratio_is_per_round():
    r = paired_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0])  # rounds: 2, 4, 3
    assert (r.median, r.min, r.max) == (3.0, 2.0, 4.0)


def test_interleaved_warms_up_then_alternates_the_order():
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = interleaved(fns, repeats=3, warmup=2)
    assert calls == ["a", "b", "a", "b",  # warm-up, untimed
                     "a", "b", "b", "a", "a", "b"]  # rounds, order reversed every other round
    assert [len(times["a"]), len(times["b"])] == [3, 3] and all(t >= 0 for t in times["a"] + times["b"])
    assert gc.isenabled()


def test_probe_leaves_the_model_as_it_was():
    snn = pytest.importorskip("snntorch")
    from snnplug.app.model_probe import check_model_fits

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(16, 10), snn.Leaky(beta=0.9, init_hidden=True))
    net.train()
    net[2].eval()  # a mixed setting of the user's: kept
    before = {k: v.clone() for k, v in net.state_dict().items()}
    check_model_fits(net, torch.rand(2, 1, 8, 8), 10, "digits")
    assert [m.training for m in net.modules()] == [True, True, True, False, True, True, True]
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched (eval, no grad)
    assert all(float(m.mem.abs().sum()) == 0 for m in (net[3], net[5]))  # states reset after the probe
