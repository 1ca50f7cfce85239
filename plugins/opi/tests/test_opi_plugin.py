"""Registration, ``snnplug.apply`` with the ``opi-if`` neuron, and the docs/opi.md examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snnplug
from snnplug.errors import UnsupportedModuleError
from snnplug_opi import OPIIFNode


def test_registered_with_docstrings_citing_the_paper() -> None:
    reg = snnplug.get_registry()
    for family, name in (("neuron", "opi-if"), ("strategy", "opi-ann"), ("converter", "opi")):
        rec = reg.get(family, name)
        assert "Bu" in rec.paper and "AAAI 2022" in rec.paper
        assert "AAAI 2022" in rec.doc and ("θ" in rec.doc or "λ" in rec.doc)
    neuron = snnplug.neuron("opi-if", T=4, v_threshold=2.0)
    assert isinstance(neuron, OPIIFNode) and neuron.v == 1.0
    assert neuron(torch.ones(4, 2, 3)).shape == (4, 2, 3)


def test_apply_replaces_soft_reset_if_nodes_keeping_thresholds() -> None:
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(layer.Linear(3, 4, step_mode="m"),
                        neuron.IFNode(v_threshold=2.0, v_reset=None, step_mode="m"),
                        layer.Linear(4, 2, step_mode="m"))
    new = snnplug.apply(net, neuron="opi-if", T=8)
    assert isinstance(net[1], neuron.IFNode)  # a copy was modified
    node = new[1]
    assert isinstance(node, OPIIFNode) and node.v_threshold == 2.0 and node.v == 1.0
    x = torch.rand(8, 5, 3)
    half = neuron.HalfThresholdIFNode(v_threshold=2.0, step_mode="m")
    functional.reset_net(new)
    torch.testing.assert_close(new(x), net[2](half(net[0](x))), rtol=0, atol=0)
    hard = nn.Sequential(layer.Linear(3, 4, step_mode="m"), neuron.IFNode(step_mode="m"))
    with pytest.raises(UnsupportedModuleError, match="soft reset"):
        snnplug.apply(hard, neuron="opi-if", T=8)


def test_docs_example_runs() -> None:
    """The snippet of docs/opi.md ("Quick start"), on a digits subset, one short epoch."""
    torch.set_num_threads(1)
    from snnplug.data import load_dataset, make_loaders
    from snnplug.engine import anytime_accuracy, direct_anytime

    bundle = load_dataset("digits", limit=256)
    train_loader, test_loader = make_loaders(bundle, batch_size=64)

    strategy = snnplug.strategy("opi-ann")                     # clip(x, 0, λ) ANN, avg pooling
    ann = strategy.build_model(bundle.input_shape, bundle.num_classes)
    opt, sched = strategy.make_optimizer(ann, epochs=1, steps_per_epoch=len(train_loader))
    for x, y in train_loader:
        loss, _ = strategy.loss(ann, x, y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()  # noqa: E702

    snn = snnplug.convert(ann.eval(), "opi", T=16)               # θ = λ, v(0) = θ/2
    acc = anytime_accuracy(direct_anytime(snn, T=16), test_loader)  # accuracy after t = 1..16 steps
    assert len(acc) == 16 and all(0.0 <= a <= 1.0 for a in acc)

    # the same conversion through SpikingJelly's own ann2snn.Converter
    from spikingjelly.activation_based import ann2snn, functional

    from snnplug_opi import OPIRecipe

    snn2 = ann2snn.Converter(OPIRecipe(T=16)).convert(ann)
    x, _ = next(iter(test_loader))
    functional.reset_net(snn2)
    out = snn2(x.unsqueeze(0).repeat(16, 1, 1, 1, 1))          # [T, B, ...] -> [T, B, classes]
    torch.testing.assert_close(out.mean(0), snn.predict(x, 16))
