"""Layer-wise streamed simulation (spikes kept as bits) against the whole-sequence simulation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from torch import nn

from snnplug.models import convnet
from snnplug_dsr.graph import trace
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode
from snnplug_dsr.representation import representation_forward
from snnplug_dsr.spike_bits import SpikeBits


@pytest.mark.parametrize("T", [1, 7, 8, 9, 20, 41])
def test_spike_bits_round_trip_in_ragged_chunks(T):
    g = torch.Generator().manual_seed(T)
    amp = torch.tensor(0.375)
    spikes = (torch.rand(T, 3, 5, generator=g) < 0.5).float() * amp
    bits = SpikeBits(T, spikes.shape[1:], spikes.device, amp)
    assert bits.words.dtype == torch.uint8 and bits.words.shape[0] == (T + 7) // 8
    s = 0
    for n in (3, 1, 6, 2, 5, 9) * 8:  # chunks straddle byte boundaries
        if s >= T:
            break
        n = min(n, T - s)
        bits.write(s, spikes[s:s + n])
        s += n
    assert torch.equal(bits.read(0, T, torch.float32), spikes)
    if T > 3:
        assert torch.equal(bits.read(T - 3, 3, torch.float64), spikes[T - 3:].double())
    with pytest.raises(IndexError, match="outside"):
        bits.read(T - 1, 2, torch.float32)


def _net(kind: str, T: int, norm: bool, spiking_out: bool) -> nn.Sequential:
    torch.manual_seed(0)
    make = (lambda: DSRIFNode(T=T, v_threshold=1.0)) if kind == "if" else (lambda: DSRLIFNode(T=T))
    net = convnet((1, 8, 8), 5, node=make, channels=(3, 4), hidden=8, norm=norm)
    if spiking_out:
        net.append(make())
    return net.double()


def _run(net, xs, y, **kw):
    out = representation_forward(net, xs, **kw)
    F.cross_entropy(out, y).backward()
    return out.detach(), [p.grad for p in net.parameters()], [b.clone() for b in net.buffers()]


@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("constant", [True, False], ids=["direct-input", "varying-input"])
@pytest.mark.parametrize("T,chunk", [(9, None), (9, 2), (17, 5)])
def test_layerwise_equals_whole_sequence_simulation(kind, norm, constant, T, chunk):
    """Same readout (exact for IF), gradients and running statistics as simulating all T steps
    at once through the model (whole-model path, no chunks)."""
    a = _net(kind, T, norm, spiking_out=kind == "if")  # LIF defaults hardly fire at the output
    b = copy.deepcopy(a)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64) * 3
    xs = x.unsqueeze(0).expand(T, *x.shape) if constant else torch.rand(T, 6, 1, 8, 8, generator=g,
                                                                         dtype=torch.float64) * 3
    y = torch.randint(0, 5, (6,), generator=g)
    oa, ga, ba = _run(a, xs, y, chunk=None, layerwise=False)
    ob, gb, bb = _run(b, xs, y, chunk=chunk, layerwise=True)
    if kind == "if":
        assert torch.equal(oa, ob)
    else:  # the LIF weighted mean is summed chunk by chunk: rounding only
        assert torch.allclose(oa, ob, rtol=0, atol=1e-12)
    assert oa.abs().sum() > 0 and sum(int(p.abs().sum() > 0) for p in ga) >= 4  # not zeros
    for p, q in zip(ga, gb):
        assert torch.allclose(p, q, rtol=1e-9, atol=1e-13)
    for p, q in zip(ba, bb):
        assert torch.allclose(p.double(), q.double(), rtol=1e-9, atol=1e-12)


def test_nested_sequentials_and_custom_modules_are_traced_into_one_graph():
    T = 5
    inner = nn.Sequential(layer.Linear(4, 6, step_mode="m"), layer.BatchNorm1d(6, step_mode="m"))
    net = nn.Sequential(inner, DSRIFNode(T=T, v_threshold=0.5), layer.Linear(6, 3, step_mode="m"))
    g = trace(net)
    assert [g.kind[n] for n in g.nodes] == ["input", "linear", "bn", "neuron", "linear", "linear"]
    assert [g.modules.get(n) for n in g.nodes[1:5]] == [inner[0], inner[1], net[1], net[2]]

    class Block(nn.Module):  # a custom forward around a neuron: traced through
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.sn = layer.Linear(4, 6, step_mode="m"), DSRIFNode(T=T, v_threshold=0.5)

        def forward(self, x):
            return self.sn(self.fc(x)) + 0.5

    custom = nn.Sequential(Block(), layer.Linear(6, 3, step_mode="m"))
    g = trace(custom)
    assert "neuron" in g.kind.values()
    xs = torch.rand(T, 2, 4, dtype=torch.float64)
    custom.double()
    ref = copy.deepcopy(custom)
    out = representation_forward(custom, xs, chunk=2)
    functional.reset_net(ref)
    with torch.no_grad():
        assert torch.allclose(out, ref(xs).mean(0), atol=1e-12)
