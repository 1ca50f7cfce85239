"""Max pooling in representation space: hand-computed counts, torch's per-step backward, a net."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from torch import nn

from snnplug_dsr.maxpool import MaxPoolRecord, MaxPoolReplay, PoolGeometry
from snnplug_dsr.neuron import DSRIFNode
from snnplug_dsr.representation import representation_forward


def test_hand_computed_window():
    # one 2x2 window (elements a b / c d), T = 4:
    #   t0: 0 1 / 0 1 -> max b (first maximum)     t1: 0 0 / 0 0 -> tie of zeros: a
    #   t2: 1 1 / 0 0 -> a                         t3: 0 0 / 1 0 -> c
    # counts a=2, b=1, c=1, d=0; pooled train 1,0,1,1 -> rate 0.75
    x = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float64)
    x = x.view(4, 1, 1, 2, 2)
    rec = MaxPoolRecord(PoolGeometry.of(nn.MaxPool2d(2)), T=4)
    rec.add(x[:3])
    rec.add(x[3:])  # chunks
    assert rec.counts.flatten().tolist() == [2, 1, 1, 0]
    x_rep = x.mean(0, keepdim=True).requires_grad_()
    y = MaxPoolReplay.apply(x_rep, rec)
    assert y.item() == 0.75  # not max of the rates (0.5)
    y.backward(torch.full_like(y, 2.0))
    # dL/dx[i] = g * c[i] / T
    assert x_rep.grad.flatten().tolist() == [1.0, 0.5, 0.5, 0.0]


@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True), (3, 1, 0, False)])
def test_equals_torch_per_step_backward_for_a_gradient_constant_in_time(k, s, p, ceil):
    T = 7
    g = torch.Generator().manual_seed(k * 10 + s)
    x = (torch.rand(T, 2, 3, 9, 9, generator=g) < 0.3).double() * 0.5  # binary spikes, many ties
    _replay_matches_torch(x, nn.MaxPool2d(k, s, p, ceil_mode=ceil), F.max_pool2d, g)


def _replay_matches_torch(x: torch.Tensor, pool: nn.Module, fn, g: torch.Generator) -> None:
    """Max pooling replayed in representation space (recorded in two chunks) gives the mean of
    torch's per-step outputs, and for a gradient G/T at every step the gradient torch's per-step
    backward sums to."""
    T = x.shape[0]
    xr = x.clone().requires_grad_()
    y = fn(xr.flatten(0, 1), pool.kernel_size, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)
    y = y.view(*x.shape[:3], *y.shape[2:])
    G = torch.randn(*y.shape[1:], generator=g, dtype=torch.float64)
    (y * (G / T)).sum().backward()  # the same gradient G/T at every step
    per_step = xr.grad.sum(0)

    rec = MaxPoolRecord(PoolGeometry.of(pool), T)
    rec.add(x[:4])
    rec.add(x[4:])
    x_rep = x.mean(0, keepdim=True).requires_grad_()
    out = MaxPoolReplay.apply(x_rep, rec)
    assert torch.equal(out[0], y.detach().mean(0))
    out.backward(G.unsqueeze(0))
    assert per_step.abs().sum() > 0
    assert torch.allclose(x_rep.grad[0], per_step, rtol=0, atol=1e-14)


def _pool_net(T: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), DSRIFNode(T=T, v_threshold=1.0),
        layer.MaxPool2d(3, 2, 1, step_mode="m"),
        layer.Conv2d(4, 6, 3, padding=1, step_mode="m"), DSRIFNode(T=T, v_threshold=1.0),
        layer.MaxPool2d(2, 2, step_mode="m"), layer.Flatten(step_mode="m"),
        layer.Linear(6 * 2 * 2, 5, step_mode="m"), DSRIFNode(T=T, v_threshold=0.5),
    ).double()


def _grads_match_per_step(a, b, shape, chunk, layerwise) -> int:
    """The readout and every parameter gradient of ``b`` through the representation
    executor equal ``a``'s per-step (BPTT-style) path; returns how many gradients are nonzero."""
    g = torch.Generator().manual_seed(3)
    xs = torch.rand(*shape, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (shape[1],), generator=g)
    functional.reset_net(a)
    oa = a(xs).mean(0)
    F.cross_entropy(oa, y).backward()
    ob = representation_forward(b, xs, chunk=chunk, layerwise=layerwise)
    F.cross_entropy(ob, y).backward()
    assert torch.equal(oa.detach(), ob.detach()) and oa.abs().sum() > 0
    nonzero = 0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-14), name
        nonzero += int(p.grad.abs().sum() > 0)
    return nonzero


@pytest.mark.parametrize("layerwise,chunk", [(True, None), (True, 3), (False, None)])
def test_network_with_max_pooling_matches_the_per_step_backward(layerwise, chunk):
    T = 8
    a = _pool_net(T)
    b = copy.deepcopy(a)
    assert _grads_match_per_step(a, b, (T, 4, 1, 8, 8), chunk, layerwise) >= 6


@pytest.mark.parametrize("d,k,s,p,ceil", [(1, 3, 2, 1, False), (1, 2, 2, 0, True), (3, 2, 2, 0, False),
                                          (3, 3, 2, 1, True)])
def test_1d_and_3d_equal_torch_per_step_backward_for_a_gradient_constant_in_time(d, k, s, p, ceil):
    T = 6
    g = torch.Generator().manual_seed(d * 100 + k * 10 + s)
    size = (11,) if d == 1 else (5, 6, 7)
    x = (torch.rand(T, 2, 3, *size, generator=g) < 0.3).double() * 0.5
    fn = F.max_pool1d if d == 1 else F.max_pool3d
    _replay_matches_torch(x, (nn.MaxPool1d if d == 1 else nn.MaxPool3d)(k, s, p, ceil_mode=ceil), fn, g)


def _pool_net_nd(T: int, d: int) -> nn.Sequential:
    torch.manual_seed(0)
    conv, pool = (layer.Conv1d, layer.MaxPool1d) if d == 1 else (layer.Conv3d, layer.MaxPool3d)
    flat = 6 * (2 if d == 1 else 8)
    return nn.Sequential(
        conv(1, 4, 3, padding=1, step_mode="m"), DSRIFNode(T=T, v_threshold=1.0),
        pool(3, 2, 1, step_mode="m"),
        conv(4, 6, 3, padding=1, step_mode="m"), DSRIFNode(T=T, v_threshold=1.0),
        pool(2, 2, step_mode="m"), layer.Flatten(step_mode="m"),
        layer.Linear(flat, 5, step_mode="m"), DSRIFNode(T=T, v_threshold=0.5),
    ).double()


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("layerwise,chunk", [(True, 3), (False, None)])
def test_1d_and_3d_networks_match_the_per_step_backward(d, layerwise, chunk):
    from snnplug_dsr.graph import trace

    T = 8
    a = _pool_net_nd(T, d)
    b = copy.deepcopy(a)
    assert [k for k in trace(b).kind.values()].count("maxpool") == 2
    assert _grads_match_per_step(a, b, (T, 4, 1, *((8,) if d == 1 else (8, 8, 8))), chunk, layerwise) >= 4
