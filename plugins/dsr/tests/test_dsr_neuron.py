"""DSR neurons against the paper's equations (METHODS.md §1), exact with dyadic values."""

from __future__ import annotations

import math

import pytest
import torch
from spikingjelly.activation_based import functional, neuron

import snnplug
from snnplug.errors import ShapeError, SnnplugError, TimeStepError
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode


def dyadic(*shape, lo=-16, hi=48, den=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, shape, generator=g).float() / den


# -- forward invariants -----------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.5, 1.0, 0.25])
def test_if_constant_input_rate_closed_form(alpha):
    T, vth = 8, 2.0
    I = torch.arange(-8, 40).float() / 8  # dyadic currents from -1 to 4.875
    n = DSRIFNode(T=T, v_threshold=vth, alpha=alpha)
    with torch.no_grad():
        out = n(I.view(1, 1, -1).expand(T, 1, -1))
    rate = out.mean(0).flatten()
    expect = vth / T * torch.clamp(torch.floor(T * I / vth + 1 - alpha), 0, T)
    assert torch.equal(rate, expect)


def test_if_alpha_equals_spikingjelly_if_with_initial_potential():
    T, vth, alpha = 16, 4.0, 0.5
    x = dyadic(T, 3, 7)
    ours = DSRIFNode(T=T, v_threshold=vth, alpha=alpha)
    sj = neuron.IFNode(v_threshold=vth, v_reset=None, step_mode="s")  # "m" compiles for ~20 s
    sj.v = torch.full(x.shape[1:], (1 - alpha) * vth)
    with torch.no_grad():
        a = ours(x)
        b = torch.stack([sj(x[t]) for t in range(T)])
    assert torch.equal(a, b * vth)
    assert torch.equal(ours.v, sj.v - (1 - alpha) * vth)  # same trajectory, shifted potential


def test_lif_weighted_charge_identity():
    T, vth, tau, dt, alpha = 20, 0.25, 1.0, 0.05, 0.3
    x = torch.rand(T, 4, 9, dtype=torch.float64) * 2 - 0.5
    n = DSRLIFNode(T=T, v_threshold=vth, tau=tau, dt=dt, alpha=alpha).double()
    with torch.no_grad():
        out = n(x)
    beta = math.exp(-dt / tau)
    w = torch.tensor([beta ** (T - t) for t in range(1, T + 1)], dtype=torch.float64).view(T, 1, 1)
    spikes = out * dt / vth
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    lhs = (w * spikes * vth).sum(0)
    rhs = (1 - beta) * (w * x).sum(0) - n.v
    assert torch.allclose(lhs, rhs, atol=1e-12)


def test_lif_fires_at_alpha_threshold_and_emits_vth_over_dt():
    n = DSRLIFNode(T=1, v_threshold=1.0, tau=1.0, dt=0.5, alpha=0.5)
    beta = math.exp(-0.5)
    need = 0.5 / (1 - beta)  # input giving v = alpha*Vth after one step
    with torch.no_grad():
        out = n(torch.tensor([need * 1.001, need * 0.999]).view(1, 1, 2))
    assert out.flatten().tolist() == [2.0, 0.0]  # Vth/dt = 2


# -- backward --------------------------------------------------------------------------------
def test_if_gradients_by_hand():
    T, vth = 4, 2.0
    x = torch.tensor([[-0.5, 0.0, -0.25, 0.0], [0.5, 0.5, 0.5, 0.5], [3.0, 3.0, 3.0, 3.0],
                      [2.0, 2.0, 2.0, 2.0]]).T.reshape(T, 1, 4).clone().requires_grad_()
    # element means: -0.1875 (below 0), 0.5 (inside), 3 (above Vth), 2 (= Vth, inside)
    g = torch.tensor([1.0, 0.5, -0.25, 2.0]).view(T, 1, 1).expand(T, 1, 4)
    n = DSRIFNode(T=T, v_threshold=vth, alpha=0.5)
    n(x).backward(g)
    G = 3.25  # sum_t g_t
    expect = torch.tensor([0.0, G / T, 0.0, G / T]).expand(T, 1, 4).reshape(T, 1, 4)
    assert torch.equal(x.grad, expect)
    assert float(n.v_threshold.grad) == G  # only the element above Vth
    # the input gradient is the same at every step
    assert torch.equal(x.grad, x.grad[:1].expand_as(x.grad))


def test_lif_gradients_match_formula():
    T, vth, tau, dt, alpha = 8, 0.25, 1.0, 0.05, 0.3
    x = (torch.rand(T, 2, 5, dtype=torch.float64) * 12 - 2).requires_grad_()
    g = torch.randn(T, 2, 5, dtype=torch.float64)
    n = DSRLIFNode(T=T, v_threshold=vth, tau=tau, dt=dt, alpha=alpha, threshold_grad_scale=0.5).double()
    n(x).backward(g)
    w = torch.tensor([math.exp(-(T - t) * dt / tau) for t in range(1, T + 1)], dtype=torch.float64)
    w = (w / w.sum()).view(T, 1, 1)
    xw = (w * x.detach()).sum(0)
    G = T * (w * g).sum(0)
    upper = vth / dt * tau
    inside = ((xw > 0) & (xw < upper)).double()
    assert inside.sum() > 0 and (xw > upper).sum() > 0
    assert torch.allclose(x.grad, (G * inside / tau / T).expand(T, 2, 5))
    assert torch.allclose(n.v_threshold.grad, (G * (xw > upper)).sum() * dt * 0.5)


def test_threshold_projection_is_in_place_and_keeps_gradient():
    n = DSRIFNode(T=2, v_threshold=1.0, v_threshold_bound=0.5)
    p = n.v_threshold
    with torch.no_grad():
        p.fill_(-3.0)  # e.g. after a large step with weight decay
    x = torch.full((2, 1, 3), 2.0)
    n(x).sum().backward()
    assert n.v_threshold is p and float(p.detach()) == 0.5  # projected onto the bound, same Parameter
    assert float(p.grad) == 6.0  # mean input 2 > 0.5 for 3 elements, G = 2 each


def test_threshold_grad_scale_multiplies_threshold_gradient_only():
    x = dyadic(4, 2, 6, lo=0, hi=64)
    grads = []
    for s in (1.0, 0.25):
        n = DSRIFNode(T=4, v_threshold=2.0, threshold_grad_scale=s)
        xi = x.clone().requires_grad_()
        n(xi).sum().backward()
        grads.append((xi.grad, n.v_threshold.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert float(grads[1][1]) == 0.25 * float(grads[0][1]) != 0


def test_presets_are_the_papers():
    a, b = snnplug.neuron("dsr-if"), snnplug.neuron("dsr-lif")
    assert (a.T, float(a.v_threshold.detach()), a.alpha, a.v_threshold_bound) == (20, 6.0, 0.5, 0.01)
    assert (b.T, b.tau, b.dt, b.alpha, b.v_threshold_bound) == (20, 1.0, 0.05, 0.3, 5e-4)
    assert float(b.v_threshold.detach()) == pytest.approx(0.3)
    assert "CVPR 2022" in snnplug.get_registry().get("neuron", "dsr-if").paper


# -- bad input ---------------------------------------------------------------------------------
def test_sequence_length_mismatch_is_a_clear_error():
    n = DSRIFNode(T=4)
    with pytest.raises(TimeStepError, match="T=4 but got 5 steps"):
        n(torch.rand(5, 2, 3))


def test_rank_and_dtype_errors():
    n = DSRIFNode(T=4)
    with pytest.raises(ShapeError, match=r"\[T, B, \.\.\.\]"):
        n(torch.rand(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        n(torch.ones(4, 2, 3, dtype=torch.int64))


def test_half_precision_input_is_simulated_in_float32():
    x = dyadic(8, 2, 5)
    for dt in (torch.float16, torch.bfloat16):
        n = DSRIFNode(T=8, v_threshold=2.0)
        xh = x.to(dt).requires_grad_()
        out = n(xh)
        assert out.dtype == dt
        ref = DSRIFNode(T=8, v_threshold=2.0)
        x32 = x.clone().requires_grad_()
        r = ref(x32)
        assert torch.equal(out.float(), r)
        out.float().sum().backward()
        r.sum().backward()
        assert xh.grad.dtype == dt and torch.equal(xh.grad.float(), x32.grad)


def test_int_thresholds_become_floats_and_bad_ones_fail():
    a, b = DSRIFNode(T=4, v_threshold=2), DSRIFNode(T=4, v_threshold=2.0)
    assert a.v_threshold.dtype == torch.float32 and torch.equal(a.v_threshold, b.v_threshold)
    x = dyadic(4, 2, 3)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    with pytest.raises(TypeError):
        DSRIFNode(v_threshold=True)
    with pytest.raises(TypeError):
        DSRIFNode(v_threshold=torch.tensor(2.0))
    with pytest.raises(ValueError, match="below"):
        DSRIFNode(v_threshold=0.001, v_threshold_bound=0.01)
    with pytest.raises(ValueError):
        DSRIFNode(alpha=0.0)


def test_single_step_mode_runs_inference_and_refuses_training():
    x = dyadic(6, 2, 4)
    m = DSRIFNode(T=6, v_threshold=2.0)
    s = DSRIFNode(T=6, v_threshold=2.0, step_mode="s")
    with torch.no_grad():
        ref = m(x)
        steps = torch.stack([s(x[t]) for t in range(6)])
    assert torch.equal(ref, steps)
    functional.reset_net(s)
    with pytest.raises(SnnplugError, match="single-step mode can only run inference"):
        s(x[0])


def test_reset_net_and_fixed_threshold_buffer():
    n = DSRIFNode(T=3, v_threshold=1.0, train_threshold=False)
    assert "v_threshold" in dict(n.named_buffers()) and not list(n.parameters())
    with torch.no_grad():
        n(torch.full((3, 1, 2), 0.375))
    assert isinstance(n.v, torch.Tensor)
    functional.reset_net(n)
    assert not isinstance(n.v, torch.Tensor) or float(n.v.abs().sum()) == 0.0
    x = torch.full((3, 1, 2), 0.75, requires_grad=True)
    n(x).sum().backward()  # no threshold gradient requested, input gradient still flows
    assert x.grad is not None and n.v_threshold.grad is None


def test_apply_replaces_spikingjelly_neurons():
    from spikingjelly.activation_based import layer

    net = torch.nn.Sequential(layer.Linear(4, 8, step_mode="m"), neuron.IFNode(step_mode="m"),
                              layer.Linear(8, 3, step_mode="m"), neuron.LIFNode(step_mode="m"))
    out = snnplug.apply(net, neuron="dsr-if", T=5, readout="replace")
    kinds = [type(m).__name__ for m in out]
    assert kinds == ["Linear", "DSRIFNode", "Linear", "DSRIFNode"] and out[1].T == 5
    functional.reset_net(out)
    assert out(torch.rand(5, 2, 4)).shape == (5, 2, 3)
