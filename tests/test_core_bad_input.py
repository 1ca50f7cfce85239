"""Property-based bad-input tests over every registered neuron and normalizer.

Each malformed input ends in either a correct result or the specific error class with the
message that names the problem (:func:`expected_error` says which, per module and input), never a hang
or a crash deep in autograd, and the module still gives a fresh module's answer on the next
valid call. The BNTT normalizer is tried in training mode (batch statistics, running averages
updated: never poisoned by a NaN/Inf batch) and in eval mode (running statistics untouched).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import functional

from snnplug.errors import ShapeError, TimeStepError
from snnplug.registry import get_registry

T = 4
NEURONS = [r for r in get_registry().all() if r.family == "neuron"]
NORMALIZERS = [r for r in get_registry().all() if r.family == "normalizer"]
#: smallest input rank (counting time) and whether a first sequence must have exactly T steps
LAYOUT = {"bntt-lif": (2, True), "dsr": (3, True), "dsr-if": (3, True), "dsr-lif": (3, True), "noise-lif": (3, True),
          "opi-if": (2, False), "bntt": (3, False)}


def expected_error(name: str, shape: tuple[int, ...], kind: str, training: bool) -> tuple[Any, str] | None:
    """The error (class, message regex) module ``name`` must raise for this input, or None."""
    min_rank, strict = LAYOUT[name]
    low_rank = rf"rank >= {min_rank}.*got shape \({shape[0]}, {shape[1]}\)"
    not_float = r"expects a floating-point tensor, got torch.int64; call x.float\(\)"
    if kind == "int" and len(shape) < min_rank:  # two faults: either one may be reported first
        return (TypeError, ShapeError), f"{not_float}|{low_rank}"
    if kind == "int":
        return TypeError, not_float
    if kind == "rank1":
        return ShapeError, r"\[T, B, .*got shape \(\d+,\)"
    if len(shape) < min_rank:
        return ShapeError, low_rank
    if shape[0] > T:
        return TimeStepError, rf"built for T={T} but (got (a sequence of )?|has seen 0 steps and got ){shape[0]}"
    if shape[0] < T and strict:
        return TimeStepError, rf"built for T={T} but got (a sequence of )?{shape[0]} steps"
    if name == "bntt" and training and shape[1] == 0:
        return ShapeError, r"BNTT needs more than 1 value per channel and step in training, got shape \(4, 0, 6\)"
    return None


def _bad_inputs():
    shape = st.sampled_from([(3, 5), (2, 3, 6, 2, 2), (T, 3, 6), (T + 1, 3, 6), (T, 0, 6), (T - 1, 3, 6)])
    kind = st.sampled_from(["ok", "nan", "inf", "int", "float64", "noncontig", "rank1"])
    return st.tuples(shape, kind)


def _make(shape: tuple[int, ...], kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g) * 2
    if kind == "nan" and x.numel():
        x.view(-1)[0] = float("nan")
    elif kind == "inf" and x.numel():
        x.view(-1)[0] = float("inf")
    elif kind == "int":
        x = (x * 3).long()
    elif kind == "float64":
        x = x.double()
    elif kind == "noncontig" and x.dim() >= 3:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif kind == "rank1":
        x = x.reshape(-1)
    return x


def _call(m: torch.nn.Module, x: torch.Tensor, want: tuple[Any, str] | None) -> torch.Tensor | None:
    """``m(x)``: the expected error (returns None) or an output of the input's shape."""
    if want is not None:
        with pytest.raises(want[0], match=want[1]):
            m(x)
        return None
    out = m(x)
    assert out.shape == x.shape
    return out


@pytest.mark.parametrize("rec", NEURONS, ids=lambda r: r.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_bad_inputs())
def test_neuron_bad_input(rec, case):
    shape, kind = case
    m = rec.factory(T=T)
    ref_in = torch.rand(T, 3, 6, generator=torch.Generator().manual_seed(1))
    fresh = rec.factory(T=T)
    torch.manual_seed(0)
    expected = fresh(ref_in)
    x = _make(shape, kind)
    out = _call(m, x, expected_error(rec.name, shape, kind, True))
    if out is not None and kind in ("ok", "noncontig", "float64") and x.numel():
        assert torch.isfinite(out).all()
    functional.reset_net(m)
    torch.manual_seed(0)
    assert torch.equal(m(ref_in), expected), "module state corrupted by the previous call"


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("rec", NORMALIZERS, ids=lambda r: r.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_bad_inputs())
def test_normalizer_bad_input(rec, training, case):
    shape, kind = case
    m = rec.factory(6, T=T).train(training)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    want = expected_error(rec.name, shape, kind, training)
    out = _call(m, _make(shape, kind), want)
    after = m.state_dict()
    if want is not None or not training:  # a failed call, or eval: running statistics untouched
        assert all(torch.equal(before[k], after[k]) for k in before)
    else:  # training: updated, never poisoned by the NaN/Inf entry
        assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
        if kind in ("ok", "float64", "noncontig") and shape[1] > 1:
            assert torch.isfinite(out).all()
