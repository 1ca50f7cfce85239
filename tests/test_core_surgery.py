"""snnplug.apply: module surgery on SpikingJelly models (nested, residual), errors, reset cache."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import base, functional, layer, neuron
from torch import nn

import snnplug
from snnplug.errors import SnnplugError, UnknownPluginError
from snnplug.types import NeuronPlugin, NormalizerPlugin

from .conftest import plugin_module  # noqa: TID252


class CountingIF(base.MemoryModule):
    """IF neuron with soft reset that counts its calls: ``v += x; s = 1[v >= θ]; v -= θ s``."""

    snnplug_spiking = True

    def __init__(self, T: int = 4, v_threshold: float = 1.0, step_mode: str = "m") -> None:
        super().__init__()
        self.T, self.v_threshold, self.step_mode = T, v_threshold, step_mode
        self.register_memory("v", 0.0)

    def single_step_forward(self, x):
        self.v = self.v + x
        s = (self.v >= self.v_threshold).to(x)
        self.v = self.v - s * self.v_threshold
        return s

    def multi_step_forward(self, x_seq):
        return torch.stack([self.single_step_forward(x) for x in x_seq])


class ScaledBN(nn.Module):
    """Stand-in normalizer that remembers the layer it replaced."""

    def __init__(self, old: nn.Module, T: int) -> None:
        super().__init__()
        self.num_features, self.T = old.num_features, T

    def forward(self, x):
        return x


def _neuron_factory(**kw):
    """Counting IF neuron (test)."""
    return CountingIF(**kw)


def _from_module(old, **kw):
    return CountingIF(v_threshold=float(old.v_threshold), **kw)


def _bn_factory(num_features, **kw):
    """Stand-in normalizer (test)."""
    return ScaledBN(nn.BatchNorm2d(num_features), **kw)


@pytest.fixture
def registry(isolated_registry):
    isolated_registry.register(plugin_module(
        snnplug_neurons=lambda: [NeuronPlugin(name="test-if", factory=_neuron_factory, paper="t",
                                              from_module=_from_module)],
        snnplug_normalizers=lambda: [NormalizerPlugin(name="test-bn", factory=_bn_factory, paper="t",
                                                      from_module=lambda old, **kw: ScaledBN(old, **kw))],
    ), name="testplugin")
    return isolated_registry


class Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(layer.Conv2d(c, c, 3, padding=1, step_mode="m"),
                                  layer.BatchNorm2d(c, step_mode="m"),
                                  neuron.IFNode(v_threshold=0.5, step_mode="m"))
        self.sn = neuron.LIFNode(step_mode="m")

    def forward(self, x):
        return self.sn(x + self.body(x))


def _net() -> nn.Module:
    return nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
        neuron.IFNode(step_mode="m"),
        nn.Sequential(Residual(4), nn.ModuleList([Residual(4)])[0]),
        layer.Flatten(step_mode="m"), layer.Linear(4 * 16, 3, step_mode="m"),
    )


def test_apply_replaces_nested_and_residual_modules_without_touching_the_original(registry):
    net = _net()
    new = snnplug.apply(net, neuron="test-if", normalizer="test-bn", T=4)
    kinds = [type(m).__name__ for m in new.modules()]
    assert kinds.count("CountingIF") == 5 and "IFNode" not in kinds and "LIFNode" not in kinds
    assert kinds.count("ScaledBN") == 3 and "BatchNorm2d" not in kinds
    # thresholds carried over by from_module (0.5 inside residual bodies)
    ths = sorted(m.v_threshold for m in new.modules() if isinstance(m, CountingIF))
    assert ths == [0.5, 0.5, 1.0, 1.0, 1.0]
    assert sum(isinstance(m, neuron.IFNode) for m in net.modules()) == 3  # original untouched
    out = new(torch.rand(4, 2, 1, 4, 4))
    assert out.shape == (4, 2, 3)


def test_reset_cache_is_invalidated_after_surgery(registry):
    net = _net()
    functional.reset_net(net)  # caches the module list of the original in SpikingJelly 2.x
    new = snnplug.apply(net, neuron="test-if", inplace=True)
    assert new is net
    new(torch.rand(4, 2, 1, 4, 4))
    assert any(isinstance(m.v, torch.Tensor) for m in new.modules() if isinstance(m, CountingIF))
    functional.reset_net(new)
    assert all(m.v == 0.0 for m in new.modules() if isinstance(m, CountingIF))


def test_apply_errors_name_the_problem(registry):
    with pytest.raises(UnknownPluginError, match="known: test-if"):
        snnplug.apply(_net(), neuron="nope")
    with pytest.raises(ValueError, match="neuron=... and/or normalizer"):
        snnplug.apply(_net())
    with pytest.raises(SnnplugError, match="found no neuron to replace"):
        snnplug.apply(nn.Sequential(nn.Linear(2, 2)), neuron="test-if")
    single = nn.Sequential(layer.Linear(2, 2), neuron.IFNode(step_mode="s"))
    with pytest.raises(SnnplugError, match="single-step mode.*set_step_mode"):
        snnplug.apply(single, neuron="test-if")
    with pytest.raises(TypeError, match="expects an nn.Module"):
        snnplug.apply("net", neuron="test-if")


def test_nothing_is_patched_globally(registry):
    before = (neuron.IFNode.forward, neuron.LIFNode.forward, nn.BatchNorm2d.forward, functional.reset_net)
    snnplug.apply(_net(), neuron="test-if", normalizer="test-bn", T=4)
    assert before == (neuron.IFNode.forward, neuron.LIFNode.forward, nn.BatchNorm2d.forward, functional.reset_net)
