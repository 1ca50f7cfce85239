"""On a GPU: every fused kernel, compiled by Triton, against the same neuron's torch path on CUDA.

Skipped without CUDA (no GPU has run them yet: see docs/gpu.md). The interpreter tests
(``-m triton``) check the kernels' arithmetic bit for bit on CPU; here the compiled kernels meet
torch's CUDA kernels, which may contract multiply-adds differently, so spikes may differ where a
membrane lies within rounding of the threshold: at most 1e-4 of them, and gradients within 1e-4.
"""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _both(make, run):
    """``run(make())`` with the kernels and with the torch path (same module state, same seed)."""
    out = []
    for mode in ("auto", "torch"):
        torch.manual_seed(0)
        with kernels.use(mode):
            out.append(run(make()))
    return out


def _close_spikes(a, b):
    assert (a != b).float().mean().item() <= 1e-4


def _grads(node_or_none, x, outs):
    loss = sum((o * torch.linspace(-1, 1, o.numel(), device=o.device).view_as(o)).sum() for o in outs)
    params = [] if node_or_none is None else [p for p in node_or_none.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, [x, *params])


def _x(T=16, shape=(8, 4097), scale=1.0, shift=0.3):
    g = torch.Generator(device="cuda").manual_seed(1)
    return torch.randn(T, *shape, device="cuda", generator=g) * scale + shift


@pytest.mark.parametrize("name", ["dsr-if", "dsr-lif"])
def test_dsr(name):
    from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode

    cls, kw, scale = (DSRIFNode, {"v_threshold": 1.0}, 1.0) if name == "dsr-if" else (DSRLIFNode, {}, 8.0)

    def run(node):
        x = _x(scale=scale).requires_grad_()
        out = node(x)
        return out.detach(), _grads(node, x, [out])

    (o1, g1), (o2, g2) = _both(lambda: cls(T=16, **kw).cuda(), run)
    _close_spikes(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_bntt_lif():
    from snnplug_bntt.neuron import BNTTLIFNode

    def run(node):
        x = _x().requires_grad_()
        out = node(x)
        return out.detach(), _grads(None, x, [out])

    (o1, g1), (o2, g2) = _both(lambda: BNTTLIFNode(T=16).cuda(), run)
    _close_spikes(o1, o2)
    torch.testing.assert_close(g1[0], g2[0], rtol=1e-4, atol=1e-4)


def test_opi_and_noise_inference():
    from snnplug_noise.neuron import NoisyLIFNode
    from snnplug_opi.neuron import OPIIFNode

    with torch.no_grad():
        a, b = _both(lambda: OPIIFNode(v_threshold=1.0, T=16).cuda(), lambda n: n(_x()))
        _close_spikes(a, b)
        for stage in (2, 3):
            a, b = _both(lambda: NoisyLIFNode(stage=stage, seed=3).cuda(), lambda n: n(_x()))
            _close_spikes(a, b)


@pytest.mark.parametrize("kind", ["leaky", "synaptic"])
def test_snntorch_nodes(kind):
    from snnplug.adapters.nodes import SnnTorchLeakyNode, SynapticNode

    def make():
        if kind == "leaky":
            return SnnTorchLeakyNode(beta=0.9, learn_beta=True, output=True).cuda()
        return SynapticNode(alpha=0.7, beta=0.9, learn_beta=True, output=True).cuda()

    def run(node):
        x = _x().requires_grad_()
        outs = node(x)
        return [o.detach() for o in outs], _grads(node, x, outs)

    (o1, g1), (o2, g2) = _both(make, run)
    _close_spikes(o1[0], o2[0])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
