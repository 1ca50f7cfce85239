"""DSR's fused Triton kernels against the torch path, run by Triton's interpreter on CPU.

Spikes (and the membrane) must be bit-identical in float32; sums and gradients agree within
1e-5 relative (summation order differs). Sizes are odd (not multiples of the 256-neuron block),
T runs from 1 to 96, inputs are non-contiguous views.
"""

from __future__ import annotations

import pytest
import torch

from snnplug import kernels

pytest.importorskip("triton", reason="Triton cannot be imported: the fused kernels are not available here")
pytestmark = pytest.mark.triton

from snnplug_dsr import functional as F  # noqa: E402
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode  # noqa: E402
from snnplug_dsr.spike_bits import SpikeBits  # noqa: E402

MOD = "snnplug_dsr.kernels"


@pytest.fixture(scope="module")
def K():
    return kernels.interpreted(MOD)


@pytest.fixture
def routed(K, monkeypatch):
    """The neurons' dispatch sends CPU tensors to the interpreted kernels (tests only)."""
    calls = []
    monkeypatch.setattr(kernels, "for_tensor", lambda x, m: calls.append(m) or (K if m == MOD else None))
    return calls


def _inputs(T: int, shape: tuple[int, ...], scale: float = 3.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(T, *shape[:-1], 2 * shape[-1], generator=g) * scale + 1.0
    return base[..., ::2]  # [T, ...], non-contiguous


@pytest.mark.parametrize("T,shape", [(1, (3, 37)), (5, (2, 301)), (96, (1, 5))])
def test_if_and_lif_simulate_bit_identical(K, T, shape):
    x = _inputs(T, shape)
    assert not x.is_contiguous()
    vth = torch.tensor(1.7)
    out_t, v_t = F.if_simulate(x, vth, 0.5)
    out_k, v_k = K.if_simulate(x, vth, 0.5)
    assert torch.equal(out_k, out_t) and torch.equal(v_k, v_t)
    assert out_t.count_nonzero() > 0
    out_t, v_t = F.lif_simulate(x * 40, vth, 0.3, 1.0, 0.05)
    out_k, v_k = K.lif_simulate(x * 40, vth, 0.3, 1.0, 0.05)
    assert torch.equal(out_k, out_t) and torch.equal(v_k, v_t)
    assert out_t.count_nonzero() > 0


def test_initial_potential_and_sums(K):
    x = _inputs(7, (4, 33))
    vth = torch.tensor(2.0)
    v0 = torch.rand(4, 33)
    out_t, v_t = F.if_simulate(x, vth, 0.5, v0)
    out_k, v_k, s_in, s_out = K.simulate(x, vth, 0.5, v0, sums=True)
    assert torch.equal(out_k, out_t) and torch.equal(v_k, v_t)
    torch.testing.assert_close(s_in, x.sum(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s_out, out_t.sum(0), rtol=1e-5, atol=1e-5)
    # LIF: the weighted input sum of the representation (paper eq. 14)
    w = F.lif_weights(7, 1.0, 0.05)
    _, _, s_in, _ = K.simulate(x, vth, 0.3, lif=True, tau=1.0, dt=0.05, sums=True)
    torch.testing.assert_close(s_in, F.weighted_mean(x, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("T,start", [(11, 0), (5, 3)])
def test_spike_bits_written_by_the_kernel(K, T, start):
    x = _inputs(T, (2, 29))
    vth = torch.tensor(1.5)
    out, _ = F.if_simulate(x, vth, 0.5)
    ref = SpikeBits(start + T, out.shape[1:], out.device, vth)
    ref.write(start, out)
    words = torch.zeros_like(ref.words)
    if start:  # earlier steps already in the words are kept
        words[0] |= 0b101
        ref.words[0] |= 0b101
    o, _, _, _ = K.simulate(x, vth, 0.5, out=False, bits=words, bit0=start)
    assert o is None
    assert torch.equal(words, ref.words)


def test_bits_must_fit(K):
    x = _inputs(9, (2, 3))
    with pytest.raises(IndexError, match="do not fit in 1 bytes"):
        K.simulate(x, torch.tensor(1.0), 0.5, bits=torch.zeros(1, 2, 3, dtype=torch.uint8))


@pytest.mark.parametrize("cls,kw,T", [(DSRIFNode, {"v_threshold": 1.5}, 6),
                                      (DSRLIFNode, {"v_threshold": 0.3}, 64)])
def test_per_step_backward_through_the_neuron(routed, cls, kw, T):
    """The neuron's per-step mode with the fused pair equals the torch autograd functions."""
    x0 = _inputs(T, (3, 41), scale=1.0)
    if cls is DSRLIFNode:  # per-neuron means on both sides of the clamp's bounds (0 and Vth*tau/dt = 6)
        x0 = x0 + torch.linspace(-3.0, 10.0, 41)
    node = cls(T=T, **kw)
    g = torch.randn(T, 3, 41, generator=torch.Generator().manual_seed(1))
    xk = x0.clone().requires_grad_()
    out_k = node(xk)
    out_k.backward(g)
    gth_k = node.v_threshold.grad.clone()
    node.v_threshold.grad = None
    xt = x0.clone().requires_grad_()
    fn = F.DSRIFFunction if cls is DSRIFNode else F.DSRLIFFunction
    args = (node.alpha, node.threshold_grad_scale) if cls is DSRIFNode else \
        (node.alpha, node.tau, node.dt, node.threshold_grad_scale)
    out_t = fn.apply(xt, node.v_threshold, *args)
    out_t.backward(g)
    assert torch.equal(out_k, out_t)
    torch.testing.assert_close(xk.grad, xt.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gth_k, node.v_threshold.grad, rtol=1e-5, atol=1e-5)
    assert xt.grad.abs().sum() > 0 and node.v_threshold.grad.abs() > 0
    assert routed == [MOD]


def test_inference_through_the_neuron(routed):
    x = _inputs(8, (2, 19))
    node = DSRIFNode(T=8, v_threshold=1.2)
    with torch.no_grad():
        out = node(x)
    ref, v = F.if_simulate(x, torch.tensor(1.2), 0.5)
    assert torch.equal(out, ref) and torch.equal(node.v, v)
    assert routed == [MOD]


@pytest.mark.parametrize("T,start,n", [(1, 0, 1), (13, 3, 9), (70, 5, 64)])
def test_spike_bits_pack_and_unpack(K, monkeypatch, T, start, n):
    g = torch.Generator().manual_seed(4)
    spikes = (torch.rand(n, 3, 2 * 37, generator=g) < 0.4).float()[..., ::2] * 1.5
    amp = torch.tensor(1.5)
    earlier = (torch.rand(3, 37, generator=g) < 0.5).to(torch.uint8)  # step 0, before `start`
    ref = SpikeBits(T, spikes.shape[1:], spikes.device, amp)
    if start:
        ref.words[0] |= earlier
    words = ref.words.clone()
    ref.write(start, spikes)
    K.pack_bits(spikes, words, start)
    assert torch.equal(words, ref.words)
    back = K.unpack_bits(words, start, n, amp)
    assert torch.equal(back, spikes) and torch.equal(back, ref.read(start, n, torch.float32))
    # SpikeBits itself routed to the kernels
    monkeypatch.setattr(kernels, "for_tensor", lambda x, m: K if m == MOD else None)
    fused = SpikeBits(T, spikes.shape[1:], spikes.device, amp)
    if start:
        fused.words[0] |= earlier
    fused.write(start, spikes)
    read = fused.read(start, n, torch.float32)
    monkeypatch.undo()
    assert torch.equal(fused.words, ref.words) and torch.equal(read, spikes)
