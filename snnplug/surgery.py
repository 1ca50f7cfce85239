"""``snnplug.apply``: module surgery on an existing model. Nothing is patched globally.

Walks the module tree (Sequential inside blocks, residual blocks, ModuleDict/ModuleList) and
replaces, in place on a deep copy unless ``inplace=True``:

* SpikingJelly neurons whose class name is in the neuron plugin's ``replaces`` (IFNode, LIFNode,
  ParametricLIFNode), each built from the settings of the neuron it replaces
  (:mod:`snnplug.neuron_settings`) unless ``preset="paper"``;
* ``nn.BatchNorm1d``/``nn.BatchNorm2d`` (and SpikingJelly's multi-step subclasses) by the
  normalizer plugin's module.

snnTorch models are first mapped to SpikingJelly multi-step models by
:mod:`snnplug.adapters.snntorch`. SpikingJelly's reset cache is invalidated afterwards.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

from torch import nn

from snnplug.backends import spikingjelly as sjb
from snnplug.checks import copy_model
from snnplug.errors import SettingChangedWarning, SnnplugError, UnsupportedModuleError
from snnplug.readout import readout_neurons
from snnplug.registry import get_registry
from snnplug.surgery_summary import Replacement, Summary, describe
from snnplug.types import NeuronPlugin, NormalizerPlugin

log = logging.getLogger("snnplug.surgery")

READOUT_CHOICES = ("keep", "replace")


def _build(plugin: NeuronPlugin | NormalizerPlugin, old: nn.Module, kw: dict[str, Any],
           preset: str | None) -> nn.Module:
    """The replacement for ``old``: from its settings (``from_module``) by default, or from the
    plugin's own defaults (the paper's) with ``preset='paper'``."""
    if plugin.from_module is not None and (preset is None or isinstance(plugin, NormalizerPlugin)):
        return plugin.from_module(old, **kw)  # normalizers start from the paper's values anyway
    if isinstance(plugin, NormalizerPlugin):
        raise SnnplugError(f"normalizer {plugin.name!r} has no from_module and cannot replace layers")
    return plugin.factory(**kw)


def _carry_hooks(old: nn.Module, new: nn.Module) -> int:
    """Register ``old``'s forward (pre-)hooks and full backward (pre-)hooks on ``new``, in order,
    with their flags; returns how many. (Torch has no public hook listing; the dicts are read,
    never written.)"""
    n = 0
    for hid, hook in old._forward_pre_hooks.items():
        new.register_forward_pre_hook(hook, with_kwargs=hid in old._forward_pre_hooks_with_kwargs)
        n += 1
    for hid, hook in old._forward_hooks.items():
        new.register_forward_hook(hook, with_kwargs=hid in old._forward_hooks_with_kwargs,
                                  always_call=hid in old._forward_hooks_always_called)
        n += 1
    for hook in old._backward_pre_hooks.values():
        new.register_full_backward_pre_hook(hook)
        n += 1
    for hook in old._backward_hooks.values():
        if old._is_full_backward_hook is False:
            new.register_backward_hook(hook)
        else:
            new.register_full_backward_hook(hook)
        n += 1
    return n


def _matches_neuron(m: nn.Module, plugin: NeuronPlugin) -> bool:
    """By class name, or by ``snnplug_replaces_as`` for adapter nodes standing in for a stock
    neuron (e.g. the snnTorch ``Leaky`` node answers to ``"LIFNode"``)."""
    name = getattr(m, "snnplug_replaces_as", type(m).__name__)
    return name in plugin.replaces and sjb.is_spiking_neuron(m)


def _matches_normalizer(m: nn.Module, plugin: NormalizerPlugin) -> bool:
    names = {c.__name__ for c in inspect.getmro(type(m))}
    return any(n in names for n in plugin.replaces) and isinstance(m, nn.modules.batchnorm._BatchNorm)


def _plan(model: nn.Module, n_plugin: NeuronPlugin | None, b_plugin: NormalizerPlugin | None,
          n_kw: dict[str, Any], b_kw: dict[str, Any], preset: str | None, keep: set[int]
          ) -> tuple[dict[int, nn.Module], Summary]:
    """Build every replacement (nothing is assigned yet): ``id(old) -> new`` and the summary.
    A module registered at several paths gets one replacement, as the original was shared.
    Neurons whose ``id`` is in ``keep`` (the readout) are left and listed in the summary."""
    paths: dict[int, list[str]] = {}
    for path, m in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(m), []).append(path)
    new_of: dict[int, nn.Module] = {}
    summary = Summary()
    done: list[str] = []  # paths replaced so far: their submodules are not visited
    for path, child in model.named_modules():
        if child is model or id(child) in new_of or any(path.startswith(p + ".") for p in done):
            continue
        plugin, kw = None, None
        if id(child) in keep and n_plugin is not None and _matches_neuron(child, n_plugin):
            summary.kept_readout.append(f"{path} ({type(child).__name__})")
            continue
        if n_plugin is not None and _matches_neuron(child, n_plugin):
            if sjb.step_mode_of(child) == "s":
                raise SnnplugError(
                    f"{path!r} ({type(child).__name__}) is in single-step mode; snnplug neurons are "
                    f"multi-step. Call spikingjelly.activation_based.functional.set_step_mode(net, 'm') "
                    f"and feed [T, B, ...] inputs")
            plugin, kw = n_plugin, n_kw
        elif b_plugin is not None and _matches_normalizer(child, b_plugin):
            plugin, kw = b_plugin, b_kw
        if plugin is None:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            new = _build(plugin, child, dict(kw), preset)
        changes = []
        for w in caught:
            if issubclass(w.category, SettingChangedWarning):
                changes.append(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if preset is not None and plugin.family == "neuron":
            changes.append(f"{plugin.name}: preset={preset!r}: the plugin's own settings replace "
                           f"{type(child).__name__}'s")
        hooks = _carry_hooks(child, new)
        new_of[id(child)] = new
        done.append(path)
        summary.rows.append(Replacement(family=plugin.family, paths=tuple(paths[id(child)]), old=describe(child),
                                        new=describe(new) + (f" +{hooks} hook(s)" if hooks else ""),
                                        changes=tuple(changes)))
    return new_of, summary


def _assign(model: nn.Module, new_of: dict[int, nn.Module]) -> None:
    """Point every registration of a replaced module at its replacement."""
    uses = [path for path, m in model.named_modules(remove_duplicate=False) if id(m) in new_of and path]
    for path in uses:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        old = getattr(parent, name)
        if id(old) in new_of:  # a path below an already replaced module is gone
            setattr(parent, name, new_of[id(old)])


def _check_has_time_steps(model: nn.Module, normalizer: str) -> None:
    """A per-step normalizer needs a multi-step SNN: refuse a plain ANN naming the fix."""
    if not any(sjb.is_spiking_neuron(m) or getattr(m, "step_mode", None) == "m" for m in model.modules()):
        raise UnsupportedModuleError(
            f"apply(normalizer={normalizer!r}): {type(model).__name__} has no spiking neurons and no "
            f"multi-step layers, so it has no time steps to normalise per step; {normalizer!r} replaces the batch norms of a "
            f"multi-step SNN. Convert the ANN first (snnplug.convert) or build it with SpikingJelly "
            f"neurons (functional.set_step_mode(net, 'm'))")


def _check_matched(summary: Summary, n_plugin: NeuronPlugin | None, b_plugin: NormalizerPlugin | None) -> None:
    """Raise if a requested family matched nothing, so a typo never passes silently."""
    n_neurons = sum(1 for r in summary if r.family == "neuron")
    if n_plugin is not None and n_neurons == 0:
        kept = (f" (the readout {', '.join(summary.kept_readout)} is kept by default; "
                f"readout='replace' replaces it)" if summary.kept_readout else "")
        raise SnnplugError(
            f"apply(neuron={n_plugin.name!r}) found no neuron to replace; it replaces "
            f"{', '.join(n_plugin.replaces)} modules (SpikingJelly) in multi-step mode{kept}"
        )
    if b_plugin is not None and len(summary) - n_neurons == 0:
        raise SnnplugError(
            f"apply(normalizer={b_plugin.name!r}) found no layer to replace; it replaces "
            f"{', '.join(b_plugin.replaces)}"
        )


def _readout_ids(model: nn.Module, readout: str, n_plugin: NeuronPlugin | None) -> set[int]:
    """``id`` of the readout neurons to keep (``readout="keep"``), see :mod:`snnplug.readout`.
    A model whose spiking neurons are all readout neurons (one spiking layer) keeps none: there
    would be nothing left for the method to act on."""
    if readout not in READOUT_CHOICES:
        raise ValueError(f"readout must be one of {READOUT_CHOICES}, got {readout!r}")
    if readout == "replace" or n_plugin is None:
        return set()
    keep = {id(model.get_submodule(p)) for p in readout_neurons(model).paths}
    spiking = {id(m) for m in model.modules() if sjb.is_spiking_neuron(m)}
    return set() if spiking <= keep else keep


def _report_changes(summary: Summary, strict: bool) -> None:
    """One warning listing the settings that could not carry over (``strict=True``: raise)."""
    changes = summary.changes()
    if not changes:
        return
    text = "; ".join(f"{msg} [{_paths_text(p)}]" for msg, p in changes.items())
    if strict:
        raise UnsupportedModuleError(f"apply(strict=True): settings that cannot carry over: {text}. "
                                     f"Pass them explicitly (neuron_kwargs=...) or use strict=False")
    warnings.warn(f"snnplug.apply changed settings it could not keep: {text}",
                  SettingChangedWarning, stacklevel=4)


def apply(model: nn.Module, *, neuron: str | None = None, normalizer: str | None = None,
          inplace: bool = False, neuron_kwargs: dict[str, Any] | None = None,
          normalizer_kwargs: dict[str, Any] | None = None, preset: str | None = None,
          strict: bool = False, return_summary: bool = False, readout: str = "keep", **kw: Any) -> Any:
    """Swap a model's neurons and/or batch norms for a plugin's, returning the new model.

    By default each replacement starts from the module it replaces (threshold, tau/leak, reset
    style, per-step settings: see :mod:`snnplug.neuron_settings`); what a method cannot keep is
    reported in one :class:`~snnplug.errors.SettingChangedWarning` (``strict=True`` raises
    instead) and in the summary. ``preset="paper"`` builds every replacement from the plugin's
    own defaults (the paper's) instead. ``kw`` (e.g. ``T=20``) goes to every replacement;
    ``neuron_kwargs``/``normalizer_kwargs`` to one family only (explicit keywords win over carried
    settings). A module registered at several places is replaced by one new module everywhere;
    its forward/backward hooks are registered on the replacement. ``return_summary=True``
    returns ``(model, Summary)``: one row per replaced module (paths, old, new, not carried
    over); the table is also logged at INFO on ``snnplug.surgery``. Raises if nothing matched.

    ``readout="keep"`` (default) leaves the model's readout neurons (the spiking layers after its
    last weight layer that feed the output, :mod:`snnplug.readout`) as the user wrote them: a
    loss on their firing rate (SpikingJelly's tutorial MSE) keeps its meaning, while a method's
    firing rule or threshold there changes it (DSR on the tutorial CSNN: 38% instead of 85%,
    docs/benchmarks.md). They are listed in the summary (``Summary.kept_readout``).
    ``readout="replace"`` replaces them too (the paper's networks spike at the output)::

        net = snnplug.apply(net, neuron="dsr", T=4)          # IF -> dsr-if, LIF/PLIF -> dsr-lif
        net = snnplug.apply(net, normalizer="bntt", T=4)
    """
    if neuron is None and normalizer is None:
        raise ValueError("snnplug.apply needs neuron=... and/or normalizer=...")
    if not isinstance(model, nn.Module):
        raise TypeError(f"snnplug.apply expects an nn.Module, got {type(model).__name__}")
    if preset not in (None, "paper"):
        raise ValueError(f"preset must be None (carry the model's settings) or 'paper', got {preset!r}")
    reg = get_registry()
    n_plugin = reg.get("neuron", neuron) if neuron is not None else None
    b_plugin = reg.get("normalizer", normalizer) if normalizer is not None else None

    from snnplug.adapters import snntorch as snt_adapter

    if snt_adapter.is_snntorch_model(model):
        model = snt_adapter.to_spikingjelly(model)
    elif not inplace:
        model = copy_model(model, "snnplug.apply")

    if b_plugin is not None and n_plugin is None:
        _check_has_time_steps(model, normalizer)
    keep = _readout_ids(model, readout, n_plugin)
    new_of, summary = _plan(model, n_plugin, b_plugin, {**kw, **(neuron_kwargs or {})},
                            {**kw, **(normalizer_kwargs or {})}, preset, keep)
    _check_matched(summary, n_plugin, b_plugin)
    _report_changes(summary, strict)
    _assign(model, new_of)
    sjb.invalidate_reset_cache(model)
    log.info("snnplug.apply replaced %d module(s):\n%s", len(summary), summary)
    return (model, summary) if return_summary else model


def _paths_text(paths: list[str], limit: int = 4) -> str:
    head = ", ".join(paths[:limit])
    return head + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
