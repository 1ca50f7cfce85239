"""The representation pass with the user's neuron kept at the readout (a mixed graph)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import snnplug
from snnplug.errors import UnsupportedModuleError
from snnplug_dsr.graph import trace
from snnplug_dsr.readout_neuron import ReadoutRecord, ReadoutReplay
from snnplug_dsr.representation import representation_forward
from snnplug_dsr.strategy import DSRStrategy

T = 3


def _csnn_body() -> nn.Module:
    from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return snnplug.apply(CSNN(T=T, channels=8).conv_fc, neuron="dsr", T=T).double()


def _x() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(2, 1, 28, 28, generator=g, dtype=torch.float64) * 3).unsqueeze(0).expand(T, 2, 1, 28, 28)


def test_readout_node_kind():
    net = _csnn_body()
    g = trace(net)
    kinds = {str(n.target): g.kind[n] for n in g.nodes if n.op == "call_module"}
    assert kinds["12"] == "readout" and kinds["10"] == "neuron" and not g.unsupported
    assert DSRStrategy(T=T).backward_mode(net) == "representation"


def test_mixed_graph_equals_per_step_except_the_weight_feeding_the_readout():
    """BN in eval: readout exact; every gradient equals the per-step one except the weight of
    the linear layer feeding the kept IFNode (there the per-step gradient is replaced by its
    time mean; its bias is exact)."""
    a = _csnn_body().eval()
    b = copy.deepcopy(a)
    y = torch.tensor([1, 3])
    oa = representation_forward(a, _x(), chunk=2)
    F.cross_entropy(oa, y).backward()
    functional.reset_net(b)
    ob = b(_x()).mean(0)
    F.cross_entropy(ob, y).backward()
    assert torch.allclose(oa, ob, rtol=0, atol=1e-12)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if name == "11.weight":
            assert not torch.allclose(p.grad, q.grad)
            cos = F.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)
            assert cos > 0.9
        else:
            assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-12), name
    assert a[0].weight.grad.abs().sum() > 0


def test_replay_gradient_is_the_time_sum_of_the_neurons_own_per_step_gradient():
    m = neuron.ParametricLIFNode(step_mode="m").double()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, 4, generator=g, dtype=torch.float64) * 3
    G = torch.randn(2, 4, generator=g, dtype=torch.float64)
    rec = ReadoutRecord(5)
    with torch.no_grad():
        rec.run(m, x[:2])
        rec.run(m, x[2:])  # chunks: state carried
    xr = x.clone().requires_grad_()
    m.reset()
    y = m(xr)
    assert torch.equal(y.detach().sum(0), rec.sum_out)
    (y * (G / 5)).sum().backward()
    want_x, want_w = xr.grad.sum(0), m.w.grad.clone()
    m.w.grad = None
    x_rep = x.mean(0, keepdim=True).requires_grad_()
    out = ReadoutReplay.apply(x_rep, rec, m)
    assert torch.equal(out[0], rec.sum_out / 5)
    out.backward(G.unsqueeze(0))
    assert torch.allclose(x_rep.grad[0], want_x, rtol=1e-12, atol=1e-14)
    assert torch.allclose(m.w.grad, want_w, rtol=1e-12, atol=1e-14)


def test_a_user_neuron_before_dsr_neurons_is_unsupported_and_named():
    from snnplug_dsr.neuron import DSRIFNode

    net = nn.Sequential(layer.Linear(4, 4, step_mode="m"), neuron.IFNode(step_mode="m"),
                        layer.Linear(4, 3, step_mode="m"), DSRIFNode(T=T, v_threshold=1.0))
    with pytest.raises(UnsupportedModuleError,
                       match=r"1 \(IFNode\): a non-DSR neuron before other neurons or non-linear operations"):
        representation_forward(net, torch.rand(T, 2, 4))


def test_strategy_loss_on_the_whole_tutorial_csnn_with_its_readout_kept():
    """The one-line model (readout kept) under strategy.loss: the representation path and the
    per-step path give the same loss value, and both train the hidden weights."""
    from spikingjelly.activation_based.examples.conv_fashion_mnist import CSNN

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = snnplug.apply(CSNN(T=T, channels=4), neuron="dsr", T=T)
    assert type(net.conv_fc[12]) is neuron.IFNode
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    losses = []
    for backward in ("representation", "per-step"):
        m = copy.deepcopy(net)
        loss, _ = DSRStrategy(T=T, backward=backward).loss(m, x, y)
        loss.backward()
        assert m.conv_fc[0].weight.grad.abs().sum() > 0
        losses.append(float(loss.detach()))
    assert abs(losses[0] - losses[1]) < 1e-5
