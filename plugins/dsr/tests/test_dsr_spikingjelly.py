"""Agreement with SpikingJelly 2.x DSRIFNode/DSRLIFNode, and each intended difference pinned."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import neuron

from snnplug.errors import TimeStepError
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode


def _run(node, x, g):
    x = x.clone().requires_grad_()
    out = node(x)
    out.backward(g)
    return out.detach(), x.grad, node.v_threshold.grad


def test_if_spikes_and_gradients_agree_with_spikingjelly():
    torch.manual_seed(0)
    T = 12
    x = torch.randn(T, 4, 3, 5) * 4 + 2
    g = torch.randn(T, 4, 3, 5)
    ours = _run(DSRIFNode(T=T, v_threshold=4.0, alpha=0.5, threshold_grad_scale=0.5), x, g)
    sj = _run(neuron.DSRIFNode(T=T, v_threshold=4.0, alpha=0.5, v_threshold_grad_scaling=0.5), x, g)
    assert torch.equal(ours[0], sj[0])
    assert torch.allclose(ours[1], sj[1], atol=1e-6)
    assert torch.allclose(ours[2], sj[2], rtol=1e-5)
    assert float(ours[2]) != 0.0


def test_lif_spikes_and_gradients_agree_with_spikingjelly_at_paper_settings():
    torch.manual_seed(1)
    T = 20
    x = torch.randn(T, 4, 6) * 4 + 5.5
    g = torch.randn(T, 4, 6)
    ours = _run(DSRLIFNode(T=T), x, g)  # paper preset: Vth 0.3, tau 1, dt 0.05, alpha 0.3
    sj = _run(neuron.DSRLIFNode(T=T, v_threshold=0.3, tau=1.0, delta_t=0.05, alpha=0.3,
                                v_threshold_lower_bound=5e-4), x, g)
    assert torch.equal(ours[0], sj[0])
    assert torch.allclose(ours[1], sj[1], atol=1e-6)
    assert torch.allclose(ours[2], sj[2], rtol=1e-5)
    assert float(ours[2]) != 0.0


def test_difference_threshold_below_bound_is_projected_not_frozen():
    """SpikingJelly clamps functionally: below the bound the threshold gets no task gradient, so
    weight decay keeps pushing it down. Ours projects the parameter back and keeps the gradient."""
    x = torch.full((4, 1, 8), 1.0)
    g = torch.ones(4, 1, 8)
    sj = neuron.DSRIFNode(T=4, v_threshold=0.5, v_threshold_lower_bound=0.25)
    ours = DSRIFNode(T=4, v_threshold=0.5, v_threshold_bound=0.25)
    for node in (sj, ours):
        with torch.no_grad():
            node.v_threshold.fill_(0.125)  # below the bound after an optimiser step
    sj_out = _run(sj, x, g)
    ours_out = _run(ours, x, g)
    assert float(sj.v_threshold.detach()) == 0.125 and float(sj_out[2].detach()) == 0.0  # frozen below the bound
    assert float(ours.v_threshold.detach()) == 0.25 and float(ours_out[2].detach()) == 32.0  # 8 elements x G=4
    assert torch.equal(sj_out[0], ours_out[0])  # both fire with the bound as threshold


def test_difference_lif_defaults_are_the_papers():
    sj, ours = neuron.DSRLIFNode(), DSRLIFNode()
    assert (float(sj.v_threshold.detach()), sj.tau, sj.v_threshold_lower_bound) == (1.0, 2.0, 0.1)
    assert (round(float(ours.v_threshold.detach()), 6), ours.tau, ours.v_threshold_bound) == (0.3, 1.0, 5e-4)


def test_difference_wrong_sequence_length_fails_early():
    x = torch.rand(5, 2, 3, requires_grad=True)
    sj = neuron.DSRIFNode(T=4, v_threshold=1.0)
    with pytest.raises(RuntimeError):  # SpikingJelly: a shape error inside autograd's backward
        sj(x).sum().backward()
    with pytest.raises(TimeStepError):
        DSRIFNode(T=4, v_threshold=1.0)(x)


def test_difference_fixed_threshold_is_a_buffer():
    sj = neuron.DSRIFNode(T=4, v_threshold=1.0, v_threshold_training=False)
    ours = DSRIFNode(T=4, v_threshold=1.0, train_threshold=False)
    assert "v_threshold" not in sj.state_dict()
    assert "v_threshold" in ours.state_dict()
