"""OPI as a SpikingJelly 2.x ``ann2snn`` recipe, usable with ``ann2snn.Converter``::

    from spikingjelly.activation_based import ann2snn
    from snnplug_opi import OPIRecipe
    snn = ann2snn.Converter(OPIRecipe(dataloader=loader, T=16)).convert(ann)
    functional.reset_net(snn); out = snn(x_seq)            # [T, B, ...] -> [T, B, classes]

``snnplug.convert(ann, "opi", ...)`` runs this same recipe. Steps (Bu et al., AAAI 2022, Alg. 1):

1. ``before_trace``: deep-copy the ANN (the caller's model is never modified), eval mode;
   every :class:`~snnplug_opi.clip.ClipReLU` becomes ``nn.Hardtanh(0, λ)`` (a leaf for fx).
2. ``after_trace``: refuse unsupported nodes (naming them), fold BN into conv/linear
   (``fold_bn=True``; otherwise BN is kept and runs per step in eval mode).
3. ``insert_observers`` / ``calibrate``: only for plain ReLUs (θ unknown): θ = mean per-batch
   ``percentile`` of the activations on the calibration data.
4. ``replace``: each activation becomes an IF neuron with θ = λ (clip) or the calibrated value,
   soft reset, fire on ``≥``, ``v(0) = v_init·θ``, output ``θ·s_t``.
5. ``finalize``: wrap in :class:`~snnplug_opi.network.OPISpikingNet` (multi-step).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import fx, nn

from spikingjelly.activation_based.ann2snn import FXConversionRecipe

from snnplug.backends.spikingjelly import sj
from snnplug.checks import as_float, as_steps, copy_model
from snnplug.errors import SnnplugError
from snnplug_opi import graph as G
from snnplug_opi.calibrate import PercentileObserver, iter_batches
from snnplug_opi.clip import ClipReLU
from snnplug_opi.network import OPISpikingNet, SpikingActivation
from snnplug_opi.neuron import OPIIFNode


_OBSERVER_PREFIX = "opi_observer_"


def _swap_clip_relus(model: nn.Module) -> int:
    """Replace every ClipReLU by the equivalent ``nn.Hardtanh(0, λ)`` (in place)."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ClipReLU):
                setattr(parent, name, nn.Hardtanh(0.0, child.threshold))
                n += 1
    return n


class OPIRecipe(FXConversionRecipe):
    """ANN→SNN conversion with optimized initial membrane potential (Bu et al., AAAI 2022).

    ``dataloader``: calibration data (tensor ``[N, ...]`` or iterable of batches), needed only
    when the ANN has plain ReLUs; ``T``: default steps of the returned net; ``v_init``: initial
    potential as a fraction of θ (½ = OPI, 0 = classic); ``fold_bn``; ``percentile`` (for ReLU
    calibration); ``max_batches``: cap on calibration batches (None = all).
    """

    def __init__(self, dataloader: Any = None, *, T: int = 16, v_init: float = 0.5,
                 fold_bn: bool = True, percentile: float = 99.9,
                 max_batches: int | None = None) -> None:
        self.dataloader = dataloader
        self.T = as_steps("T", T)
        self.v_init = as_float("v_init", v_init, lo=0.0, hi=1.0)
        if not isinstance(fold_bn, bool):
            raise TypeError(f"fold_bn must be a bool, got {fold_bn!r}")
        self.fold_bn = fold_bn
        self.percentile = as_float("percentile", percentile, positive=True, hi=100.0)
        if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                        or max_batches < 1):
            raise TypeError(f"max_batches must be a positive int or None, got {max_batches!r}")
        self.max_batches = max_batches
        self.info: dict[str, Any] = {}

    # -- FX recipe lifecycle ---------------------------------------------------------------
    def before_trace(self, converter: Any, ann: nn.Module) -> nn.Module:
        if not isinstance(ann, nn.Module):
            raise TypeError(f"the OPI converter expects an nn.Module ANN, got {type(ann).__name__}")
        if any(isinstance(m, sj().base.MemoryModule) for m in ann.modules()):
            raise SnnplugError("this model already holds spiking/stateful SpikingJelly modules; "
                               "OPI converts an ANN (ReLU or ClipReLU activations)")
        self._t0 = time.perf_counter()
        net = copy_model(ann, "the OPI converter").eval()
        self.info = {"clip_layers": _swap_clip_relus(net), "v_init": self.v_init}
        return net

    def after_trace(self, converter: Any, fx_model: fx.GraphModule) -> fx.GraphModule:
        G.check_supported(fx_model)
        acts = G.activations(fx_model)
        if not acts:
            raise SnnplugError("the model has no ReLU/clip activation to turn into IF neurons")
        self.info["input_rank"] = G.input_rank(fx_model)
        self.info["folded_bn"] = G.fold_batch_norms(fx_model) if self.fold_bn else 0
        return fx_model

    def insert_observers(self, converter: Any, fx_model: fx.GraphModule) -> fx.GraphModule:
        relus = [a for a in G.activations(fx_model) if a.kind == "relu"]
        if relus and self.dataloader is None:
            where = ", ".join(a.node.name for a in relus[:4])
            raise SnnplugError(
                f"the ANN has plain ReLU activations ({where}{', ...' if len(relus) > 4 else ''}) "
                f"whose thresholds must be calibrated: pass calibration data (snnplug.convert(..., "
                f"calibration=loader) or OPIRecipe(dataloader=loader)), or train the ANN with "
                f"strategy 'opi-ann' so every activation is a ClipReLU with a trained bound"
            )
        for k, act in enumerate(relus):
            name = f"{_OBSERVER_PREFIX}{k}"
            fx_model.add_submodule(name, PercentileObserver(self.percentile))
            with fx_model.graph.inserting_after(act.node):
                fx_model.graph.call_module(name, (act.node,))
        fx_model.recompile()
        return fx_model

    def calibrate(self, converter: Any, fx_model: fx.GraphModule) -> fx.GraphModule:
        observers = [m for n, m in fx_model.named_children() if n.startswith(_OBSERVER_PREFIX)]
        self.info["calibrated"] = bool(observers)
        if observers:
            with torch.no_grad():
                for x in iter_batches(self.dataloader, max_batches=self.max_batches,
                                      device=getattr(converter, "device", None)):
                    fx_model(x)
        return fx_model

    def replace(self, converter: Any, fx_model: fx.GraphModule) -> fx.GraphModule:
        graph = fx_model.graph
        observers: dict[fx.Node, PercentileObserver] = {}
        for node in list(graph.nodes):
            if node.op == "call_module" and str(node.target).startswith(_OBSERVER_PREFIX):
                observers[node.args[0]] = fx_model.get_submodule(node.target)
                graph.erase_node(node)
        target_uses: dict[str, int] = {}
        for node in graph.nodes:
            if node.op == "call_module":
                target_uses[node.target] = target_uses.get(node.target, 0) + 1
        thresholds: dict[str, float] = {}
        for act in G.activations(fx_model):
            node = act.node
            if act.upper is not None:
                theta = act.upper
            else:
                theta = observers[node].threshold(node.name)
            module = SpikingActivation(OPIIFNode(theta, self.v_init), theta)
            if node.op == "call_module" and target_uses[node.target] == 1:
                name = str(node.target)  # replace in place: keeps the ANN's module path
                parent, _, leaf = name.rpartition(".")
                setattr(fx_model.get_submodule(parent) if parent else fx_model, leaf, module)
            else:  # functional ReLU or a module called at several sites: one neuron per site
                name = f"opi_if_{node.name}"
                fx_model.add_submodule(name, module)
            with graph.inserting_after(node):
                new = graph.call_module(name, (node.args[0],))
            node.replace_all_uses_with(new)
            graph.erase_node(node)
            thresholds[name] = theta
        self.info["thresholds"] = thresholds
        graph.lint()
        fx_model.delete_all_unused_submodules()
        fx_model.recompile()
        return fx_model

    def finalize(self, converter: Any, fx_model: fx.GraphModule) -> nn.Module:
        self.info["seconds"] = time.perf_counter() - getattr(self, "_t0", time.perf_counter())
        net = OPISpikingNet(fx_model, self.T, self.info)
        device = getattr(converter, "device", None)
        return net.to(device) if device is not None else net
