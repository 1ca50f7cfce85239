"""apply(readout="keep"|"replace"): the readout neurons (after the last weight layer) are found
by dataflow (or registration order) and left as the user wrote them by default."""

from __future__ import annotations

import warnings

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import snnplug
from snnplug.readout import readout_neurons


def _mlp() -> nn.Sequential:
    return nn.Sequential(layer.Linear(4, 4, step_mode="m"), neuron.IFNode(step_mode="m"),
                         layer.Linear(4, 3, step_mode="m"), neuron.IFNode(step_mode="m"))


def _apply(net, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return snnplug.apply(net, return_summary=True, **kw)


def test_tutorial_csnn_readout_is_the_neuron_after_the_last_linear():
    from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

    net = CSNN(T=2, channels=4)
    r = readout_neurons(net)
    assert r == type(r)(("conv_fc.12",), "traced")
    assert isinstance(net.get_submodule("conv_fc.11"), nn.Linear)
    new, summary = _apply(net, neuron="dsr", T=2)
    assert type(new.conv_fc[12]) is neuron.IFNode  # kept, the same settings
    assert new.conv_fc[12].v_threshold == 1.0
    assert [type(new.conv_fc[i]).__name__ for i in (2, 6, 10)] == ["DSRIFNode"] * 3
    assert summary.kept_readout == ["conv_fc.12 (IFNode)"]
    assert 'kept as the readout (readout="keep"): conv_fc.12 (IFNode)' in str(summary)
    assert sum(1 for _ in summary) == 3


def test_replace_replaces_the_readout_too():
    new, summary = _apply(_mlp(), neuron="dsr", T=2, readout="replace")
    assert [type(m).__name__ for m in new] == ["Linear", "DSRIFNode", "Linear", "DSRIFNode"]
    assert summary.kept_readout == []


def test_resnet_has_no_readout_neuron():
    from spikingjelly.activation_based.model import spiking_resnet

    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, num_classes=10)
    functional.set_step_mode(net, "m")
    assert readout_neurons(net).paths == ()  # the output is fc: no neuron after it


def test_neurons_on_several_paths_to_the_output_are_all_readout():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = layer.Linear(4, 4, step_mode="m"), layer.Linear(4, 3, step_mode="m")
            self.hid, self.a, self.b = (neuron.IFNode(step_mode="m") for _ in range(3))

        def forward(self, x):
            h = self.fc2(self.hid(self.fc1(x)))
            return self.a(h) + self.b(h)

    assert readout_neurons(Two()).paths == ("a", "b")


def test_untraceable_model_falls_back_to_registration_order():
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _mlp()

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                return self.net(x)
            return self.net(-x)

    r = readout_neurons(Loop())
    assert r.how == "module order" and r.paths == ("net.3",)


def test_a_model_whose_only_neurons_are_its_readout_has_them_replaced():
    net = nn.Sequential(layer.Linear(4, 3, step_mode="m"), neuron.IFNode(step_mode="m"))
    assert readout_neurons(net).paths == ("1",)
    new, summary = _apply(net, neuron="dsr", T=2)
    assert type(new[1]).__name__ == "DSRIFNode" and summary.kept_readout == []


def test_neurons_only_have_no_readout():
    assert readout_neurons(nn.Sequential(neuron.IFNode(step_mode="m"))).paths == ()


def test_normalizer_only_ignores_readout():
    net = nn.Sequential(layer.Linear(4, 4, step_mode="m"), layer.BatchNorm1d(4, step_mode="m"),
                        neuron.IFNode(step_mode="m"), layer.Linear(4, 3, step_mode="m"),
                        neuron.IFNode(step_mode="m"))
    new, summary = _apply(net, normalizer="bntt", T=2)
    assert summary.kept_readout == [] and type(new[4]) is neuron.IFNode


def test_bad_readout_value_is_refused():
    with pytest.raises(ValueError, match=r"readout must be one of \('keep', 'replace'\), got 'drop'"):
        snnplug.apply(_mlp(), neuron="dsr", T=2, readout="drop")


def test_kept_readout_trains_in_the_users_loop():
    torch.manual_seed(0)
    net, _ = _apply(_mlp(), neuron="dsr", T=2)
    assert type(net[3]) is neuron.IFNode and type(net[1]).__name__ == "DSRIFNode"
    x = torch.rand(2, 5, 4) * 3
    out = net(x).mean(0)
    torch.nn.functional.mse_loss(out, torch.zeros_like(out)).backward()
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()


def test_second_apply_keeps_the_readout_and_says_so():
    """After one apply the readout is the only stock neuron left: a second apply does not
    quietly convert it (the model has other, already converted, neurons)."""
    from snnplug.errors import SnnplugError

    net, _ = _apply(_mlp(), neuron="dsr", T=2)
    with pytest.raises(SnnplugError, match=r"found no neuron to replace.*the readout 3 \(IFNode\) is kept by "
                                           r"default; readout='replace' replaces it"):
        snnplug.apply(net, neuron="noise-lif")
    again, summary = _apply(net, neuron="noise-lif", readout="replace")
    assert type(again[3]).__name__ == "NoisyLIFNode" and type(again[1]).__name__ == "DSRIFNode"
