"""The snnTorch adapter's fused Triton kernels (Leaky / Synaptic forward loop and BPTT scan)
against the torch path, run by Triton's interpreter on CPU.

Spikes and membranes bit-identical in float32; every gradient (input, initial states, beta,
alpha, threshold, graded spike factor) within 1e-5 relative / 1e-5 absolute. All reset
mechanisms, with and without reset delay; odd sizes, T=1 to 96, non-contiguous input.
"""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels

pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from snnplug.adapters.nodes import SnnTorchLeakyNode, SynapticNode  # noqa: E402

MOD = "snnplug.adapters.kernels"


@pytest.fixture(scope="module")
def K():
    return kernels.interpreted(MOD)


def _x(T, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, *shape[:-1], 2 * shape[-1], generator=g) * 0.9 + 0.35)[..., ::2]


def _node(kind, reset, delay):
    common = dict(threshold=0.9, reset_mechanism=reset, reset_delay=delay, learn_threshold=True,
                  graded_spikes_factor=1.0 if reset == "subtract" else 0.7,
                  learn_graded_spikes_factor=reset != "subtract", output=True, impl="fused")
    if kind == "leaky":
        return SnnTorchLeakyNode(beta=0.8, learn_beta=True, **common)
    return SynapticNode(alpha=0.6, beta=0.8, learn_alpha=True, learn_beta=True, **common)


def _run(node, x0, m0, gens, fused, K, monkeypatch, used=None):
    node.reset()
    if fused:
        monkeypatch.setattr(kernels, "for_tensor", lambda t, m: K if m == MOD else None)
        for name in ("forward", "scan"):
            real = getattr(K, name)
            monkeypatch.setattr(K, name, lambda *a, _r=real, _n=name, **k: used.append(_n) or _r(*a, **k))
    x = x0.clone().requires_grad_()
    m = m0.clone().requires_grad_()
    node.v = m
    if isinstance(node, SynapticNode):
        node.syn = m * 0.5
    try:
        outs = node(x)
        loss = sum((o * g).sum() for o, g in zip(outs, gens))
        params = [p for p in node.parameters()]
        grads = torch.autograd.grad(loss, [x, m, *params])
    finally:
        monkeypatch.undo()
    return [o.detach() for o in outs], grads


CASES = [("leaky", "subtract", True, 1), ("leaky", "zero", True, 7), ("leaky", "none", True, 5),
         ("leaky", "subtract", False, 9), ("leaky", "zero", False, 96),
         ("synaptic", "subtract", True, 6), ("synaptic", "zero", False, 8), ("synaptic", "none", True, 3),
         ("synaptic", "subtract", False, 40)]


@pytest.mark.parametrize("kind,reset,delay,T", CASES)
def test_kernels_match_torch(K, monkeypatch, kind, reset, delay, T):
    shape = (2, 37) if T < 90 else (1, 5)
    x0 = _x(T, shape)
    m0 = torch.rand(shape) * 1.2
    node = _node(kind, reset, delay)
    n_out = 2 if kind == "leaky" else 3
    gen = torch.Generator().manual_seed(3)
    gens = [torch.randn(T, *shape, generator=gen) for _ in range(n_out)]
    outs_t, grads_t = _run(node, x0, m0, gens, False, K, monkeypatch)
    used = []
    outs_k, grads_k = _run(node, x0, m0, gens, True, K, monkeypatch, used)
    assert used[0] == "forward" and "scan" in used
    for a, b in zip(outs_k, outs_t):
        assert torch.equal(a, b)
    assert 0 < (outs_t[0] != 0).float().mean() < 1
    for a, b in zip(grads_k, grads_t):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert grads_t[0].abs().sum() > 0


def test_per_neuron_parameters_stay_on_torch(K, monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "for_tensor", lambda t, m: calls.append(m) or K)
    node = SnnTorchLeakyNode(beta=torch.full((7,), 0.8), impl="fused")
    node(_x(4, (2, 7)))
    assert calls == []  # one-value parameters only: the kernels were not even looked up
