"""The torch.fx trace of a model is cached per model and invalidated when its modules change."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

from snnplug_dsr import graph as G
from snnplug_dsr.neuron import DSRIFNode
from snnplug_dsr.representation import representation_forward

T = 3


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(layer.Linear(4, 6, step_mode="m"), layer.BatchNorm1d(6, step_mode="m"),
                         DSRIFNode(T=T, v_threshold=1.0), layer.Linear(6, 3, step_mode="m"))


@pytest.fixture
def traces(monkeypatch):
    """Counts real torch.fx traces."""
    calls = []
    real = G._Tracer.trace

    def counting(self, root, *a, **k):
        calls.append(root)
        return real(self, root, *a, **k)

    monkeypatch.setattr(G._Tracer, "trace", counting)
    G.clear_cache()
    return calls


def test_second_call_reuses_the_trace_and_gives_the_same_result(traces):
    net = _net()
    x = torch.rand(T, 5, 4)
    a = representation_forward(net, x)
    b = representation_forward(net, x)
    assert len(traces) == 1
    assert torch.equal(a, b)


def test_mode_change_reclassifies_without_retracing(traces):
    net = _net()
    bn = next(n for n in G.trace(net).nodes if n.target == "1")
    assert G.trace(net).kind[bn] == "bn"
    net.eval()
    g = G.trace(net)
    assert g.kind[next(n for n in g.nodes if n.target == "1")] == "linear"  # eval BN is affine
    assert len(traces) == 1


def test_replacing_a_module_invalidates_the_trace(traces):
    net = _net()
    x = torch.rand(T, 5, 4)
    representation_forward(net, x)
    net[3] = layer.Linear(6, 2, step_mode="m")  # a new module at the same path
    assert representation_forward(net, x).shape == (5, 2)
    assert len(traces) == 2
    net.append(nn.Identity())  # a module added
    G.trace(net)
    assert len(traces) == 3
    net.forward = lambda x: nn.Sequential.forward(net, x)  # a forward set on the instance
    G.trace(net)
    assert len(traces) == 4


def test_untraceable_model_is_cached_too(traces):
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = layer.Linear(4, 3, step_mode="m")
            self.sn = DSRIFNode(T=T, v_threshold=1.0)

        def forward(self, x):
            return self.sn(self.fc(x)) if x.sum() > 0 else x

    net = Branchy()
    for _ in range(2):
        with pytest.raises(G.TraceFailure, match=r"TraceError"):
            G.trace(net)
    assert len(traces) == 1


def test_clear_cache_and_no_reference_kept(traces):
    net = _net()
    G.trace(net)
    G.clear_cache(net)
    G.trace(net)
    assert len(traces) == 2
    ref = weakref.ref(net)
    del net
    traces.clear()
    gc.collect()
    assert ref() is None  # the cache holds the model weakly
