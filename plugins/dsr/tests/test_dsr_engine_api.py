"""The explicit engine API of the DSR neurons: new_record / stream / replay / any_length."""

from __future__ import annotations

import pytest
import torch

from snnplug.errors import SnnplugError, TimeStepError
from snnplug_dsr import functional as F
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode


@pytest.mark.parametrize("cls", [DSRIFNode, DSRLIFNode])
def test_stream_in_chunks_equals_one_simulation_and_keeps_no_state_on_the_module(cls):
    T = 9
    n = cls(T=T, v_threshold=0.8) if cls is DSRIFNode else cls(T=T)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(T, 3, 5, generator=g, dtype=torch.float64) * (2 if cls is DSRIFNode else 30)
    whole, _ = n._simulate(x, None)
    rec = n.new_record()
    parts = [n.stream(x[s:s + c], rec) for s, c in ((0, 4), (4, 1), (5, 4))]
    assert torch.equal(torch.cat(parts), whole) and whole.abs().sum() > 0
    assert rec.steps == T and torch.equal(rec.rate(), whole.mean(0))
    if cls is DSRIFNode:  # sum_t x_t recovered from charge conservation
        assert torch.allclose(rec.rep_in(), x.mean(0), atol=1e-12)
    else:  # the weighted mean of the inputs
        w = F.lif_weights(T, n.tau, n.dt, dtype=torch.float64)
        assert torch.allclose(rec.rep_in(), F.weighted_mean(x, w), atol=1e-12)
    assert not hasattr(n, "_record") and not hasattr(n, "_mode")
    with pytest.raises(TimeStepError, match="more than 9 steps"):
        n.stream(x[:1], rec)


def test_replay_returns_the_rate_with_the_dsr_gradient():
    T = 6
    n = DSRIFNode(T=T, v_threshold=1.0)
    x = torch.tensor([[0.5, 2.0, -0.3]], dtype=torch.float64).expand(T, 1, 3)
    rec = n.new_record()
    with pytest.raises(SnnplugError, match="no complete streamed simulation"):
        n.replay(x.mean(0, keepdim=True), rec)
    n.stream(x, rec)
    x_rep = x.mean(0, keepdim=True).clone().requires_grad_()
    r = n.replay(x_rep, rec)
    # alpha=0.5: rate Vth/T*clamp(floor(T*I/Vth + 1/2), 0, T): 0.5 -> 3/6, 2.0 -> 1, -0.3 -> 0
    assert r.detach().flatten().tolist() == [0.5, 1.0, 0.0]
    r.sum().backward()
    # dL/d mean x = 1[0 <= mean x <= Vth]; dL/dVth = #(mean x > Vth)
    assert x_rep.grad.flatten().tolist() == [1.0, 0.0, 0.0]
    assert n.v_threshold.grad.item() == 1.0


def test_new_record_checks_T_and_any_length_is_scoped():
    n = DSRIFNode(T=4)
    with pytest.raises(TimeStepError, match="built for T=4"):
        n.new_record(5)
    x = torch.rand(7, 2, 3)
    with torch.no_grad():
        with pytest.raises(TimeStepError, match="built for T=4"):
            n(x)
        with n.any_length():
            assert n(x).shape == x.shape
        assert n.strict_T
