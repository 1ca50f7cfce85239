"""BNTT LIF neuron, surrogate, accumulator and Poisson encoder against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from snnplug.errors import ShapeError, TimeStepError
from snnplug_bntt.encoding import signed_poisson
from snnplug_bntt.neuron import Accumulator, BNTTLIFNode, spike, triangle_surrogate

torch.set_num_threads(1)


@pytest.mark.parametrize("theta", [1.0, 2.0])
def test_surrogate_peaks_at_threshold_and_vanishes_outside(theta):
    u = torch.tensor([-theta, 0.0, theta / 2, theta, 3 * theta / 2, 2 * theta, 3 * theta], requires_grad=True)
    spike(u, theta, 0.3).sum().backward()
    want = torch.tensor([0.0, 0.0, 0.15, 0.3, 0.15, 0.0, 0.0])
    torch.testing.assert_close(u.grad, want, rtol=0, atol=1e-7)
    assert torch.equal(triangle_surrogate(u.detach(), theta, 0.3), u.grad)


def test_lif_dynamics_by_hand_fire_strictly_above_threshold_soft_reset():
    # λ = 0.5, θ = 1, inputs dyadic: exact arithmetic
    x = torch.tensor([1.0, 1.0, 0.75, 0.0, 1.5]).view(5, 1, 1)
    n = BNTTLIFNode(leak=0.5)
    s = n(x)
    # u1 = 1 (not > 1, no spike, v1 = 1); u2 = 0.5 + 1 = 1.5 -> spike, v2 = 0.5
    # u3 = 0.25 + 0.75 = 1 -> no spike, v3 = 1; u4 = 0.5 -> 0; u5 = 0.25 + 1.5 = 1.75 -> spike, v5 = 0.75
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    assert n.v.item() == 0.75


def _reference_lif(x, leak, theta, alpha):
    """Straight autograd loop of eq. 4/8 with a detached reset (independent of LIFSequence)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        u = leak * v + x[t]
        s = spike(u, theta, alpha)
        out.append(s)
        v = u - theta * s.detach()
    return torch.stack(out), v


@pytest.mark.parametrize("leak,theta", [(0.99, 1.0), (0.5, 2.0)])
def test_fused_lif_matches_autograd_loop_forward_and_backward(leak, theta):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 3, 5, generator=g) * 1.2 + 0.6).requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    w = torch.randn(7, 3, 5, generator=g)
    n = BNTTLIFNode(leak=leak, v_threshold=theta)
    s = n(x)
    sr, vr = _reference_lif(xr, leak, theta, 0.3)
    assert torch.equal(s, sr)
    torch.testing.assert_close(n.v, vr)
    ((s * w).sum() + n.v.sum()).backward()
    ((sr * w).sum() + vr.sum()).backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-5, atol=1e-6)


def test_reset_carries_no_gradient():
    # one spike at t=1; d s_2 / d x_1 must be λ·σ'(u_2) (no -θ·σ'(u_1) term through the reset)
    x = torch.tensor([1.5, 0.5]).view(2, 1).requires_grad_(True)
    n = BNTTLIFNode(leak=0.5)
    s = n(x)
    s[1].sum().backward()
    u2 = 0.5 * 0.5 + 0.5  # v1 = 0.5 after the reset
    assert x.grad[0].item() == pytest.approx(0.5 * 0.3 * max(0.0, 1 - abs(u2 - 1)))


def test_chunks_and_single_steps_equal_one_multi_step_run():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 3, generator=g) + 0.7
    whole = BNTTLIFNode()(x)
    n = BNTTLIFNode()
    chunks = torch.cat([n(x[:2]), n(x[2:])])
    single = BNTTLIFNode(step_mode="s")
    steps = torch.stack([single(x[t]) for t in range(6)])
    assert torch.equal(whole, chunks) and torch.equal(whole, steps)


def test_neuron_reset_and_T_limit():
    from spikingjelly.activation_based import functional

    n = BNTTLIFNode(T=4)
    n(torch.ones(4, 1, 1) * 0.75)
    with pytest.raises(TimeStepError, match="reset_net"):
        n(torch.ones(1, 1, 1))
    functional.reset_net(n)
    assert n.v == 0.0 and n.t == 0
    with pytest.raises(ShapeError):
        BNTTLIFNode()(torch.ones(3))


def test_accumulator_sums_without_leak_or_spikes():
    x = torch.tensor([0.5, -0.25, 1.0]).view(3, 1, 1)
    acc = Accumulator()
    assert acc(x).flatten().tolist() == [0.5, 0.25, 1.25]
    assert acc(x[:1]).flatten().tolist() == [1.75]  # continues until reset
    acc.reset()
    assert acc(x[:1]).flatten().tolist() == [0.5]


def test_signed_poisson_values_and_rates():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([[-3.0, -1.0, 0.0, 0.5, 2.0]])
    s = signed_poisson(x, 4000, generator=g)
    assert s.shape == (4000, 1, 5)
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(s[:, 0, 0], -torch.ones(4000))  # |x| >= 2 always fires, with the sign of x
    assert torch.equal(s[:, 0, 4], torch.ones(4000))
    assert torch.equal(s[:, 0, 2], torch.zeros(4000))
    rate = s.mean(0)[0]
    # E[s] = sign(x)·min(|x|/2, 1); 4000 Bernoulli draws: 5 standard deviations
    assert abs(rate[1].item() + 0.5) < 5 * (0.25 / 4000) ** 0.5
    assert abs(rate[3].item() - 0.25) < 5 * (0.1875 / 4000) ** 0.5
    with pytest.raises(ShapeError):
        signed_poisson(torch.zeros(3), 2)
