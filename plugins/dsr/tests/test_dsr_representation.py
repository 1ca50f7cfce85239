"""The T-independent representation backward against the straightforward per-step one."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer

from snnplug.errors import SnnplugError, TimeStepError, UnsupportedModuleError
from snnplug.models import convnet
from snnplug_dsr.neuron import DSRIFNode, DSRLIFNode
from snnplug_dsr.representation import representation_forward, unsupported_modules

T = 6


def _net(kind: str, norm: bool) -> torch.nn.Sequential:
    torch.manual_seed(0)
    make = (lambda: DSRIFNode(T=T, v_threshold=1.0)) if kind == "if" else (lambda: DSRLIFNode(T=T))
    net = convnet((1, 8, 8), 5, node=make, channels=(3, 4), hidden=8, norm=norm)
    net.append(make())
    return net.double()


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 1, 8, 8, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (12,), generator=g)
    return x.unsqueeze(0).expand(T, *x.shape), y


def _per_step(net, xs, y):
    functional.reset_net(net)
    out = net(xs).mean(0)
    F.cross_entropy(out, y).backward()
    return out.detach()


def _representation(net, xs, y, chunk, layerwise=True):
    out = representation_forward(net, xs, chunk=chunk, layerwise=layerwise)
    F.cross_entropy(out, y).backward()
    return out.detach()


@pytest.mark.parametrize("layerwise", [True, False], ids=["layerwise", "whole-model"])
@pytest.mark.parametrize("kind", ["if", "lif"])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_gradients_equal_per_step_without_batch_norm(kind, chunk, layerwise):
    a = _net(kind, norm=False)
    b = copy.deepcopy(a)
    xs, y = _batch()
    la, lb = _per_step(a, xs, y), _representation(b, xs, y, chunk, layerwise)
    assert torch.equal(la, lb)
    n_nonzero = 0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-14), name
        n_nonzero += int(p.grad.abs().sum() > 0)
    assert n_nonzero >= 6  # the comparison is not between zeros


@pytest.mark.parametrize("layerwise", [True, False], ids=["layerwise", "whole-model"])
@pytest.mark.parametrize("chunk", [None, 2])
def test_batch_norm_values_exact_and_only_pre_bn_weights_differ(chunk, layerwise):
    a = _net("if", norm=True)
    b = copy.deepcopy(a)
    xs, y = _batch()
    la, lb = _per_step(a, xs, y), _representation(b, xs, y, chunk, layerwise)
    assert torch.allclose(la, lb, atol=1e-12)
    for (name, p), q in zip(a.named_buffers(), b.buffers()):  # running stats updated once, same values
        assert torch.allclose(p.double(), q.double(), atol=1e-12), name
    differ = []
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if not torch.allclose(p.grad, q.grad, rtol=1e-8, atol=1e-12):
            differ.append(name)
    # the first conv sees a time-constant input: exact; the conv/linear feeding a BN whose input
    # varies in time lose the within-time covariance term; BN affine and thresholds are exact
    convs_before_bn = {"4.weight", "9.weight"}
    assert set(differ) <= convs_before_bn and differ


@pytest.mark.parametrize("layerwise", [True, False])
def test_bn_running_stats_updated_once_per_iteration(layerwise):
    net = _net("if", norm=True)
    xs, _ = _batch()
    representation_forward(net, xs, chunk=2, layerwise=layerwise)
    assert all(int(m.num_batches_tracked) == 1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_unsupported_modules_are_named():
    net = torch.nn.Sequential(layer.Linear(4, 4, step_mode="m"), torch.nn.Dropout(0.5),
                              DSRIFNode(T=T))  # torch dropout in training: a new mask per step
    assert unsupported_modules(net) == ["1 (Dropout)"]
    with pytest.raises(UnsupportedModuleError, match=r"1 \(Dropout\)"):
        representation_forward(net, torch.rand(T, 2, 4))


def test_errors_for_plain_models_and_wrong_T():
    with pytest.raises(SnnplugError, match="no DSR neurons"):
        representation_forward(torch.nn.Sequential(layer.Linear(3, 2, step_mode="m")), torch.rand(T, 2, 3))
    net = torch.nn.Sequential(layer.Linear(3, 2, step_mode="m"), DSRIFNode(T=T))
    with pytest.raises(TimeStepError, match="built for"):
        representation_forward(net, torch.rand(T + 1, 2, 3))


@pytest.mark.parametrize("layerwise", [True, False])
def test_no_per_step_graph_is_kept(layerwise):
    """The graph saves [B, ...] tensors only: no saved tensor has the T axis of the input."""
    net = _net("if", norm=True)
    xs, y = _batch()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        representation_forward(net, xs, chunk=None, layerwise=layerwise)
    assert saved and all(s[:1] != (T,) and T * 12 not in s[:1] for s in saved)
