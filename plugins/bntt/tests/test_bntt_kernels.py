"""BNTT-LIF's fused Triton kernels against the torch path, run by Triton's interpreter on CPU.

Spikes and the final potential are bit-identical in float32; BPTT gradients (input and initial
potential) agree within 1e-5 relative / 1e-6 absolute. Odd sizes, T=1 to 128, non-contiguous
input, gradients reaching the spikes only, the final potential only, or both.
"""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels
from snnplug.checks import any_length

pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from snnplug_bntt.neuron import BNTTLIFNode, LIFSequence  # noqa: E402

MOD = "snnplug_bntt.kernels"


@pytest.fixture(scope="module")
def K():
    return kernels.interpreted(MOD)


def _x(T: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, *shape[:-1], 2 * shape[-1], generator=g) * 0.8 + 0.4)[..., ::2]


@pytest.mark.parametrize("T,shape,grads", [(1, (3, 37), "both"), (9, (2, 301), "spikes"),
                                           (128, (1, 6), "both"), (16, (4, 5, 7), "v")])
def test_forward_and_bptt_match_torch(K, T, shape, grads):
    x0 = _x(T, shape)
    assert not x0.is_contiguous()
    v00 = torch.rand(shape) * 0.5
    gen = torch.Generator().manual_seed(2)
    gs, gv = torch.randn(T, *shape, generator=gen), torch.randn(shape, generator=gen)
    results = []
    for fn in (LIFSequence, K.LIFSequence):
        x = x0.clone().requires_grad_()
        v0 = v00.clone().requires_grad_()
        s, v = fn.apply(x, v0, 0.99, 1.0, 0.3)
        loss = (s * gs).sum() if grads != "v" else 0.0
        if grads != "spikes":
            loss = loss + (v * gv).sum()
        loss.backward()
        results.append((s, v, x.grad, v0.grad))
    (s_t, v_t, gx_t, gv_t), (s_k, v_k, gx_k, gv_k) = results
    assert torch.equal(s_k, s_t) and torch.equal(v_k, v_t)
    assert 0 < s_t.mean() < 1
    torch.testing.assert_close(gx_k, gx_t, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gv_k, gv_t, rtol=1e-5, atol=1e-6)
    assert gx_t.abs().sum() > 0


def test_node_dispatches_to_the_kernel(K, monkeypatch):
    calls = []

    def route(x, m):
        calls.append(m)
        return K if m == MOD else None

    monkeypatch.setattr(kernels, "for_tensor", route)
    x = _x(6, (2, 33))
    node = BNTTLIFNode(T=6)
    with any_length(node):  # two calls of 3 steps on purpose; the state carries over
        s1 = torch.cat([node(x[:3]), node(x[3:])])
    with kernels.use("torch"):
        monkeypatch.undo()
        node.reset()
        s2 = node(x)
    assert calls == [MOD, MOD]
    assert torch.equal(s1, s2)
