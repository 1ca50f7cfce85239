"""OPI's fused Triton inference kernel against the torch path, run by Triton's interpreter on CPU.

Spikes and the final potential are bit-identical in float32 (odd sizes, T=1 to 128,
non-contiguous input, v(0) = θ/2 and a continued simulation).
"""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels

pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from snnplug_opi import functional as OF  # noqa: E402
from snnplug_opi.neuron import OPIIFNode  # noqa: E402

MOD = "snnplug_opi.kernels"


@pytest.fixture(scope="module")
def K():
    return kernels.interpreted(MOD)


@pytest.mark.parametrize("T,shape", [(1, (3, 37)), (8, (2, 301)), (128, (1, 7))])
def test_kernel_matches_torch(K, T, shape):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(T, *shape[:-1], 2 * shape[-1], generator=g) * 1.2 - 0.1)[..., ::2]
    theta = 0.7
    v0 = torch.full(shape, 0.5 * theta)
    s_t, v_t = OF.if_multi_step(x, v0, theta)
    s_k, v_k = K.if_multi_step(x, v0, theta)
    assert torch.equal(s_k, s_t) and torch.equal(v_k, v_t)
    assert 0 < s_t.mean() < 1


def test_neuron_uses_kernel_for_inference_only(K, monkeypatch):
    monkeypatch.setattr(kernels, "for_tensor", lambda x, m: K if m == MOD else None)
    calls = []
    real = K.if_multi_step
    monkeypatch.setattr(K, "if_multi_step", lambda *a: calls.append(1) or real(*a))
    x = torch.rand(6, 2, 45) * 0.9
    node = OPIIFNode(v_threshold=0.8, T=6)
    with torch.no_grad():
        s = torch.cat([node(x[:2]), node(x[2:])])  # v(0) = θ/2, then continued
    ref, v = OF.if_multi_step(x, torch.full((2, 45), 0.4), 0.8)
    assert torch.equal(s, ref) and torch.equal(node.v, v) and len(calls) == 2
    node.reset()
    node(x.requires_grad_())  # gradients wanted: the torch path
    assert len(calls) == 2
