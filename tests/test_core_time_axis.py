"""Strategies on models that add the time axis and read out themselves (issue 15): SpikingJelly's
tutorial CSNN. :func:`snnplug.time_axis.driven` finds the multi-step body, or refuses naming the
fix; the probe leaves the model's state, mode and the random generators untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snnplug
from snnplug.errors import ShapeError
from snnplug.time_axis import driven

pytest.importorskip("spikingjelly")
from spikingjelly.activation_based import layer, neuron  # noqa: E402
from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN  # noqa: E402


def test_multi_step_model_is_driven_as_it_is():
    net = nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(4, 3, step_mode="m"), neuron.IFNode(step_mode="m"))
    assert driven(net, torch.rand(2, 5, 1, 2, 2)) is net


def test_tutorial_csnn_is_driven_through_its_body_and_trains_with_a_strategy():
    torch.manual_seed(0)
    net = CSNN(T=4, channels=4)
    x_seq = torch.rand(2, 3, 1, 28, 28)  # strategy's T (2) differs from the model's own T (4)
    training = net.training
    state = torch.random.get_rng_state()
    assert driven(net, x_seq) is net.conv_fc
    assert net.training == training and torch.equal(torch.random.get_rng_state(), state)
    st = snnplug.strategy("dsr", T=2)
    with pytest.warns(snnplug.errors.SettingChangedWarning):
        model = st.prepare(net)
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    loss, logits = st.loss(model, x, y)
    assert logits.shape == (3, 10) and torch.isfinite(loss)
    loss.backward()
    assert model.conv_fc[0].weight.grad is not None  # the user's model's weights train


def test_model_that_cannot_be_driven_is_refused_naming_the_fix():
    class Spread(nn.Module):  # neurons in two children, forward takes [B, F] only
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Linear(4, 4), neuron.IFNode(step_mode="s"))
            self.b = nn.Sequential(nn.Linear(4, 2), neuron.IFNode(step_mode="s"))

        def forward(self, x):
            return self.b(self.a(x.flatten(1)))

    with pytest.raises(ShapeError, match=r"Spread does not map the strategy's input \[T, B, \.\.\.\] = \(2, 3, 4\).*"
                                         r"functional.set_step_mode\(net, 'm'\)"):
        driven(Spread(), torch.rand(2, 3, 4))
