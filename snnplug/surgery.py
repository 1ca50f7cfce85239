"""``snnplug.apply``: module surgery on an existing model. Nothing is patched globally.

Walks the module tree (Sequential inside blocks, residual blocks, ModuleDict/ModuleList) and
replaces, in place on a deep copy unless ``inplace=True``:

* SpikingJelly neurons whose class name is in the neuron plugin's ``replaces`` (IFNode, LIFNode);
* ``nn.BatchNorm1d``/``nn.BatchNorm2d`` (and SpikingJelly's multi-step subclasses) by the
  normalizer plugin's module.

snnTorch models are first mapped to SpikingJelly multi-step models by
:mod:`snnplug.adapters.snntorch`. SpikingJelly's reset cache is invalidated afterwards.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from snnplug.backends import spikingjelly as sjb
from snnplug.checks import copy_model
from snnplug.errors import SnnplugError
from snnplug.registry import get_registry
from snnplug.types import NeuronPlugin, NormalizerPlugin


def _children_paths(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, child) for every module below ``model``, parents first."""
    out = []
    for parent in model.modules():
        for name, child in parent.named_children():
            out.append((parent, name, child))
    return out


def _build(plugin: NeuronPlugin | NormalizerPlugin, old: nn.Module, kw: dict[str, Any]) -> nn.Module:
    if plugin.from_module is not None:
        return plugin.from_module(old, **kw)
    if isinstance(plugin, NormalizerPlugin):
        raise SnnplugError(f"normalizer {plugin.name!r} has no from_module and cannot replace layers")
    return plugin.factory(**kw)


def _matches_neuron(m: nn.Module, plugin: NeuronPlugin) -> bool:
    """By class name, or by ``snnplug_replaces_as`` for adapter nodes standing in for a stock
    neuron (e.g. the snnTorch ``Leaky`` node answers to ``"LIFNode"``)."""
    name = getattr(m, "snnplug_replaces_as", type(m).__name__)
    return name in plugin.replaces and sjb.is_spiking_neuron(m)


def _matches_normalizer(m: nn.Module, plugin: NormalizerPlugin) -> bool:
    names = {c.__name__ for c in inspect.getmro(type(m))}
    return any(n in names for n in plugin.replaces) and isinstance(m, nn.modules.batchnorm._BatchNorm)


def apply(model: nn.Module, *, neuron: str | None = None, normalizer: str | None = None,
          inplace: bool = False, neuron_kwargs: dict[str, Any] | None = None,
          normalizer_kwargs: dict[str, Any] | None = None, **kw: Any) -> nn.Module:
    """Swap a model's neurons and/or batch norms for a plugin's, returning the new model.

    ``kw`` (e.g. ``T=20``) goes to every factory; ``neuron_kwargs``/``normalizer_kwargs`` go to
    one family only. Raises if nothing matched, so a typo never passes silently::

        net = snnplug.apply(net, neuron="dsr-if", T=20)
        net = snnplug.apply(net, normalizer="bntt", T=25)
    """
    if neuron is None and normalizer is None:
        raise ValueError("snnplug.apply needs neuron=... and/or normalizer=...")
    if not isinstance(model, nn.Module):
        raise TypeError(f"snnplug.apply expects an nn.Module, got {type(model).__name__}")
    reg = get_registry()
    n_plugin = reg.get("neuron", neuron) if neuron is not None else None
    b_plugin = reg.get("normalizer", normalizer) if normalizer is not None else None

    from snnplug.adapters import snntorch as snt_adapter

    if snt_adapter.is_snntorch_model(model):
        model = snt_adapter.to_spikingjelly(model)
    elif not inplace:
        model = copy_model(model, "snnplug.apply")

    counts = {"neuron": 0, "normalizer": 0}
    for parent, name, child in _children_paths(model):
        new = None
        if n_plugin is not None and _matches_neuron(child, n_plugin):
            mode = sjb.step_mode_of(child)
            if mode == "s":
                raise SnnplugError(
                    f"{name!r} ({type(child).__name__}) is in single-step mode; snnplug neurons are "
                    f"multi-step. Call spikingjelly.activation_based.functional.set_step_mode(net, 'm') "
                    f"and feed [T, B, ...] inputs"
                )
            new = _build(n_plugin, child, {**kw, **(neuron_kwargs or {})})
            counts["neuron"] += 1
        elif b_plugin is not None and _matches_normalizer(child, b_plugin):
            new = _build(b_plugin, child, {**kw, **(normalizer_kwargs or {})})
            counts["normalizer"] += 1
        if new is not None:
            setattr(parent, name, new)
    if n_plugin is not None and counts["neuron"] == 0:
        raise SnnplugError(
            f"apply(neuron={neuron!r}) found no neuron to replace; it replaces "
            f"{', '.join(n_plugin.replaces)} modules (SpikingJelly) in multi-step mode"
        )
    if b_plugin is not None and counts["normalizer"] == 0:
        raise SnnplugError(
            f"apply(normalizer={normalizer!r}) found no layer to replace; it replaces "
            f"{', '.join(b_plugin.replaces)}"
        )
    sjb.invalidate_reset_cache(model)
    return model
