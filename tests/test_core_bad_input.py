"""Property-based bad-input tests over every registered neuron and normalizer.

Each malformed input ends in either a correct result or an error that names the problem
(a ValueError/TypeError subclass with a message), never a hang or a crash deep in autograd,
and the module still gives a fresh module's answer on the next valid call.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import functional

from snnplug.registry import get_registry

T = 4
NEURONS = [r for r in get_registry().all() if r.family == "neuron"]
NORMALIZERS = [r for r in get_registry().all() if r.family == "normalizer"]
CLEAR_ERRORS = (ValueError, TypeError, RuntimeError)


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


def _call(m: torch.nn.Module, x: torch.Tensor, what: str) -> torch.Tensor | None:
    """``m(x)``: either an explained error (returns None) or an output of the input's shape;
    more steps than T must raise."""
    try:
        out = m(x)
    except CLEAR_ERRORS as exc:
        assert len(str(exc)) > 15, f"error without an explanation: {type(exc).__name__}({exc!s})"
        return None
    assert not (x.dim() >= 3 and x.shape[0] > T), f"{x.shape[0]} steps into a T={T} {what} must raise"
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
    out = _call(m, x, "neuron")
    if out is not None and kind in ("ok", "noncontig", "float64") and x.numel():
        assert torch.isfinite(out).all()
    functional.reset_net(m)
    torch.manual_seed(0)
    assert torch.equal(m(ref_in), expected), "module state corrupted by the previous call"


@pytest.mark.parametrize("rec", NORMALIZERS, ids=lambda r: r.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_bad_inputs())
def test_normalizer_bad_input(rec, case):
    shape, kind = case
    m = rec.factory(6, T=T).eval()  # eval: running statistics must not change on a failed call
    before = {k: v.clone() for k, v in m.state_dict().items()}
    _call(m, _make(shape, kind), "normalizer")
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
