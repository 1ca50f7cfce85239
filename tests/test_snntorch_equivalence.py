"""snnTorch loop vs the converted SpikingJelly model: exact spikes, matching gradients.

Property tests draw beta, threshold (including dyadic values that make the membrane hit the
threshold exactly), reset mechanism, reset_delay, learnable/per-neuron parameters, layer shapes,
T and the neuron's implementation; the reference is snnTorch itself on the same weights.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

snn = pytest.importorskip("snntorch")
from snnplug.adapters import snntorch as A  # noqa: E402
from snnplug.adapters.surrogates import Surrogate  # noqa: E402
from snnplug.backends.spikingjelly import reset as sj_reset  # noqa: E402

RESETS = ["subtract", "zero", "none"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _neuron(kind: str, n: int, *, beta, thr, reset: str, delay: bool, learn: bool, spike_grad=None, g=1.0):
    kw = dict(init_hidden=True, reset_mechanism=reset, reset_delay=delay, learn_beta=learn,
              learn_threshold=learn, spike_grad=spike_grad)
    if kind == "leaky":
        return snn.Leaky(beta=beta, threshold=thr, graded_spikes_factor=g, learn_graded_spikes_factor=learn, **kw)
    return snn.Synaptic(alpha=0.75, beta=beta, threshold=thr, learn_alpha=learn, **kw)


def _run_both(net: nn.Module, sj_net: nn.Module, x: torch.Tensor):
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    o1 = A.run(net, x1)
    sj_reset(sj_net)
    o2 = sj_net(x2)
    o1, o2 = (o1[0], o2[0]) if isinstance(o1, tuple) else (o1, o2)
    w = torch.linspace(-1, 1, o1.numel()).view_as(o1)
    (o1 * w).sum().backward()
    (o2 * w).sum().backward()
    return o1, o2, x1.grad, x2.grad


def _assert_grads_close(net, sj_net, gx1, gx2):
    # equal_nan: snnTorch's sigmoid surrogate overflows (inf/inf) far below threshold; so must ours
    torch.testing.assert_close(gx2, gx1, rtol=1e-4, atol=1e-5, equal_nan=True)
    for name, p, q in A.parameter_pairs(net, sj_net):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4, equal_nan=True, msg=name)


@SETTINGS
@given(kind=st.sampled_from(["leaky", "synaptic"]), reset=st.sampled_from(RESETS), delay=st.booleans(),
       learn=st.booleans(), per_neuron=st.booleans(), impl=st.sampled_from(["fused", "autograd"]),
       T=st.integers(1, 12), B=st.integers(1, 5), n=st.integers(1, 7),
       beta=st.sampled_from([0.5, 0.875, 1.0, 0.9, 0.3]), thr=st.sampled_from([0.25, 0.5, 1.0, 2.0, 0.7]),
       seed=st.integers(0, 10_000))
def test_linear_random_configs_exact(kind, reset, delay, learn, per_neuron, impl, T, B, n, beta, thr, seed):
    torch.manual_seed(seed)
    b = torch.rand(n) * 0.5 + 0.5 if per_neuron else beta
    th = torch.rand(n) + 0.25 if per_neuron else thr
    net = nn.Sequential(nn.Linear(3, n), _neuron(kind, n, beta=b, thr=th, reset=reset, delay=delay, learn=learn))
    sj_net = A.to_spikingjelly(net, layers="per-step", impl=impl)
    x = torch.randn(T, B, 3) * 2
    o1, o2, g1, g2 = _run_both(net, sj_net, x)
    assert int((o1 != o2).sum()) == 0
    _assert_grads_close(net, sj_net, g1, g2)


@SETTINGS
@given(reset=st.sampled_from(RESETS), delay=st.booleans(), T=st.integers(1, 16),
       thr=st.sampled_from([0.25, 0.5, 1.0, 2.0]), beta=st.sampled_from([0.5, 0.75, 1.0]),
       seed=st.integers(0, 10_000), kind=st.sampled_from(["leaky", "synaptic"]))
def test_dyadic_ties_vectorized_exact(reset, delay, T, thr, beta, seed, kind):
    """Dyadic weights/inputs: every sum is exact, so membranes land exactly on the threshold
    often; snnTorch does not fire there (``>``) and neither may the node, in vectorised mode."""
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(4, 6, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randint(-4, 5, (6, 4), generator=g).float() / 4)
    net = nn.Sequential(lin, _neuron(kind, 6, beta=beta, thr=thr, reset=reset, delay=delay, learn=False))
    sj_net = A.to_spikingjelly(net)  # vectorized
    x = torch.randint(0, 3, (T, 3, 4), generator=g).float() / 2
    o1, o2, g1, g2 = _run_both(net, sj_net, x)
    assert int((o1 != o2).sum()) == 0
    _assert_grads_close(net, sj_net, g1, g2)


@pytest.mark.parametrize("impl", ["fused", "autograd"])
@pytest.mark.parametrize("delay", [True, False])
def test_tie_does_not_fire_hand_computed(impl, delay):
    """beta=1, thr=1, input 0.5 each step: the membrane hits exactly 1.0 at t=1 (no spike: > not >=).
    reset_delay=True : m = .5, 1, 1.5(s), 1.5+.5-1 = 1, 1.5(s), 1, 1.5(s)
    reset_delay=False: m = .5, 1, 1.5(s) -> .5, 1, 1.5(s) -> .5, 1, 1.5(s) -> .5
    """
    net = nn.Sequential(snn.Leaky(beta=1.0, threshold=1.0, init_hidden=True, reset_delay=delay, output=True))
    sj_net = A.to_spikingjelly(net, impl=impl)
    x = torch.full((7, 1, 1), 0.5)
    sj_reset(sj_net)
    spk, mem = (v.flatten().tolist() for v in sj_net(x))
    assert spk == [0, 0, 1, 0, 1, 0, 1]
    assert mem == ([.5, 1, 1.5, 1, 1.5, 1, 1.5] if delay else [.5, 1, .5, 1, .5, 1, .5])
    ref_spk, ref_mem = A.run(net, x)
    assert ref_spk.flatten().tolist() == spk and ref_mem.flatten().tolist() == mem


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("delay", [True, False])
def test_conv_net_with_batchnorm_training_exact(reset, delay):
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2),
        snn.Leaky(beta=torch.rand(4, 1, 1), threshold=0.5, init_hidden=True, reset_mechanism=reset,
                  reset_delay=delay, learn_beta=True),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
        snn.Synaptic(alpha=0.5, beta=0.75, init_hidden=True, reset_mechanism=reset, reset_delay=delay))
    sj_net = A.to_spikingjelly(net, layers="per-step")
    x = torch.rand(6, 3, 1, 8, 8) * 2
    o1, o2, g1, g2 = _run_both(net, sj_net, x)
    assert int((o1 != o2).sum()) == 0 and o1.sum() > 0
    _assert_grads_close(net, sj_net, g1, g2)
    bn_a, bn_b = net[1], sj_net[1]  # per-step statistics: T running-stat updates, as snnTorch
    torch.testing.assert_close(bn_b.running_mean, bn_a.running_mean)
    torch.testing.assert_close(bn_b.running_var, bn_a.running_var)


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through",
                                       "heaviside", "sfs", "spike_rate_escape"])
def test_surrogates_match_snntorch_gradient(surrogate):
    sur = Surrogate.make(surrogate)
    net = nn.Sequential(nn.Linear(3, 5), snn.Leaky(beta=0.9, init_hidden=True, spike_grad=sur.to_snntorch()))
    sj_net = A.to_spikingjelly(net, layers="per-step", impl="fused")
    assert sj_net[1].surrogate == sur
    x = torch.randn(5, 2, 3)
    o1, o2, g1, g2 = _run_both(net, sj_net, x)
    assert int((o1 != o2).sum()) == 0
    _assert_grads_close(net, sj_net, g1, g2)


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through",
                                       "heaviside", "sfs", "spike_rate_escape", "none"])
def test_in_place_surrogate_gradient_same_bits(surrogate):
    """``grad_`` (used by the fused backward, overwrites its argument) gives ``grad``'s exact bits."""
    sur = Surrogate.make(surrogate)
    u = torch.cat([torch.randn(1000) * 3, torch.tensor([0.0, -0.0, 1.0, -1.0, 1e-30, 40.0])])
    want = sur.grad(u.clone())
    got = sur.grad_(u.clone())
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    assert torch.equal(got.nan_to_num(), want.nan_to_num())


@SETTINGS
@given(kind=st.sampled_from(["leaky", "synaptic"]), reset=st.sampled_from(RESETS), delay=st.booleans(),
       learn=st.booleans(), per_neuron=st.booleans(), T=st.integers(1, 10), seed=st.integers(0, 10_000))
def test_state_outputs_in_the_loss_fused_gradients(kind, reset, delay, learn, per_neuron, T, seed):
    """``output=True`` with membrane (and synaptic current) in the loss: the fused backward's
    paths that receive a gradient for the states, against snnTorch's autograd."""
    torch.manual_seed(seed)
    n = 5
    b = torch.rand(n) * 0.5 + 0.5 if per_neuron else 0.875
    th = torch.rand(n) + 0.25 if per_neuron else 0.5
    neuron = _neuron(kind, n, beta=b, thr=th, reset=reset, delay=delay, learn=learn)
    neuron.output = True
    net = nn.Sequential(nn.Linear(3, n), neuron)
    sj_net = A.to_spikingjelly(net, layers="per-step", impl="fused")
    x = torch.randn(T, 2, 3) * 2
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    outs_a = A.run(net, x1)
    sj_reset(sj_net)
    outs_b = sj_net(x2)
    assert len(outs_a) == len(outs_b) == (3 if kind == "synaptic" else 2)
    for oa, ob in zip(outs_a, outs_b, strict=True):
        assert torch.equal(oa, ob)
    for outs in (outs_a, outs_b):
        w = [torch.linspace(-1, 1 + i, o.numel()).view_as(o) for i, o in enumerate(outs)]
        sum((o * wi).sum() + 0.25 * (o * o).sum() for o, wi in zip(outs, w, strict=True)).backward()
    _assert_grads_close(net, sj_net, x1.grad, x2.grad)


def test_surrogate_parameters_read_from_closure():
    from snntorch import surrogate as s

    from snnplug.adapters.surrogates import from_snntorch

    n = snn.Leaky(beta=0.5, spike_grad=s.fast_sigmoid(slope=10))
    assert from_snntorch(n) == Surrogate.make("fast_sigmoid", slope=10.0)
    n = snn.Leaky(beta=0.5, surrogate_disable=True)
    assert from_snntorch(n).name == "none"


def test_custom_surrogate_runs_through_autograd_path():
    from snntorch import surrogate as s

    fn = s.custom_surrogate(lambda inp, grad, out: grad * 0.5)
    net = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.9, init_hidden=True, spike_grad=fn))
    sj_net = A.to_spikingjelly(net, layers="per-step")
    assert not sj_net[1]._use_fused()
    o1, o2, g1, g2 = _run_both(net, sj_net, torch.randn(4, 2, 3))
    assert int((o1 != o2).sum()) == 0
    _assert_grads_close(net, sj_net, g1, g2)


def test_graded_spikes_and_output_mem_match():
    net = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.8, init_hidden=True, graded_spikes_factor=0.5,
                                                   learn_graded_spikes_factor=True, output=True))
    sj_net = A.to_spikingjelly(net, layers="per-step")
    x = torch.randn(6, 2, 3) * 3
    spk_a, mem_a = A.run(net, x)
    sj_reset(sj_net)
    spk_b, mem_b = sj_net(x)
    assert torch.equal(spk_a, spk_b) and torch.equal(mem_a, mem_b)
    (spk_a.sum() + mem_a.pow(2).sum()).backward()
    (spk_b.sum() + mem_b.pow(2).sum()).backward()
    for name, p, q in A.parameter_pairs(net, sj_net):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_single_step_mode_matches_loop():
    net = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.8, init_hidden=True, reset_delay=False))
    node = A.to_spikingjelly(net)[1]
    node.step_mode = "s"
    x = torch.randn(5, 2, 3) * 3
    ref = A.run(net, x)
    sj_reset(node)
    got = torch.stack([node(net[0](x[t])) for t in range(5)])
    assert torch.equal(got, ref)
