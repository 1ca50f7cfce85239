"""BNTT inside residual blocks with in-place adds (issue 15): SpikingJelly's BasicBlock does
``out += identity`` on the normaliser's output, which autograd forbids on a custom Function's
view output. The layer's output must be a fresh tensor, in training, and gradients must equal
those of the same computation without the in-place add."""

from __future__ import annotations

import pytest
import torch

import snnplug

pytest.importorskip("spikingjelly")
from spikingjelly.activation_based import functional, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import spiking_resnet  # noqa: E402

from snnplug_bntt import functional as BF  # noqa: E402


def test_output_is_not_a_view_and_takes_inplace_adds():
    x = torch.randn(3, 4, 5, 6, 6, requires_grad=True)
    gamma = torch.rand(3, 5, requires_grad=True)
    y, _, _ = BF.bntt_train(x, gamma, 1e-4)
    assert not y._is_view()
    other = torch.randn_like(y)
    z = y.clone()  # reference: out-of-place add
    (z + other).square().sum().backward()
    gx_ref, gg_ref = x.grad.clone(), gamma.grad.clone()
    x.grad = gamma.grad = None
    y, _, _ = BF.bntt_train(x, gamma, 1e-4)
    y += other  # what SpikingJelly's BasicBlock does
    y.square().sum().backward()
    torch.testing.assert_close(x.grad, gx_ref)
    torch.testing.assert_close(gamma.grad, gg_ref)


def test_spiking_resnet18_trains_with_bntt():
    torch.manual_seed(0)
    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.IFNode, surrogate_function=surrogate.ATan(),
                                          num_classes=10)
    functional.set_step_mode(net, "m")
    net = snnplug.apply(net, normalizer="bntt", T=2)
    net.train()
    x = torch.rand(2, 2, 3, 32, 32)
    out = net(x)
    loss = torch.nn.functional.cross_entropy(out.mean(0), torch.tensor([1, 2]))
    loss.backward()
    g = net.layer1[0].bn2.weight.grad  # the BNTT before `out += identity`
    assert g is not None and g.shape == (2, 64) and torch.isfinite(g).all() and bool(g.abs().sum() > 0)
