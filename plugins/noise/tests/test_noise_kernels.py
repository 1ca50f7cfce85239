"""The noisy LIF's fused Triton inference kernels (stages 2 and 3) against the torch path, run by
Triton's interpreter on CPU. Same seed, same noise draw: spikes and the final potential must be
bit-identical (stage 3's per-sample statistics are summed in another order, so the potential is
compared within 1e-6 and the spikes exactly on these inputs). Odd layer sizes (not multiples of
the 256-neuron block), T=1 to 64, non-contiguous input, alpha = inf, a continued simulation."""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels

pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from snnplug_noise.neuron import NoisyLIFNode  # noqa: E402

MOD = "snnplug_noise.kernels"


@pytest.fixture(scope="module")
def K():
    return kernels.interpreted(MOD)


def _x(T, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, *shape[:-1], 2 * shape[-1], generator=g) * 0.6 + 0.3)[..., ::2]


def _run(node, x, K, monkeypatch, fused):
    node.reset()
    if fused:
        monkeypatch.setattr(kernels, "for_tensor", lambda t, m: K if m == MOD else None)
    try:
        with torch.no_grad():
            out = node(x)
    finally:
        monkeypatch.undo()
    v = node.v.clone() if isinstance(node.v, torch.Tensor) else node.v
    return out, v


@pytest.mark.parametrize("stage,T,shape,kw", [
    (2, 1, (3, 37), {}), (2, 16, (2, 5, 61), {"noise": "uniform"}),
    (3, 1, (3, 37), {}), (3, 7, (2, 301), {}), (3, 48, (2, 3, 5), {"alpha": 3.0, "beta": 0.4}),
    (3, 9, (2, 300), {"alpha": float("inf")}),
])
def test_kernel_matches_torch(K, monkeypatch, stage, T, shape, kw):
    x = _x(T, shape)
    assert not x.is_contiguous()
    node = NoisyLIFNode(stage=stage, seed=5, **kw)
    s_t, v_t = _run(node, x, K, monkeypatch, fused=False)
    s_k, v_k = _run(node, x, K, monkeypatch, fused=True)
    assert torch.equal(s_k, s_t)
    assert 0 < s_t.mean() < 1
    if stage == 3:
        torch.testing.assert_close(v_k, v_t, rtol=1e-6, atol=1e-6)


def test_stage3_continues_from_the_state(K, monkeypatch):
    x = _x(10, (2, 45))
    node = NoisyLIFNode(stage=3, seed=1)
    results = []
    for fused in (False, True):
        node.reset()
        if fused:
            monkeypatch.setattr(kernels, "for_tensor", lambda t, m: K if m == MOD else None)
        with torch.no_grad():
            results.append(torch.cat([node(x[:4]), node(x[4:])]))  # V(4) carried between calls
        monkeypatch.undo()
    assert torch.equal(results[1], results[0])
