"""The model as a graph of operations on spike trains (``torch.fx``), classified for DSR.

:func:`trace` turns a model into a :class:`Graph`: ``torch.fx`` symbolic tracing with
SpikingJelly's layers, neurons and containers (and every stateful ``MemoryModule``) as leaf
modules, so residual blocks (``out += identity``, SEW ``sew_function``), ``torch.flatten``,
concatenation etc. become nodes. Every live node gets a kind:

``input``    the model's input sequence
``neuron``   a DSR neuron (the engine drives it through ``stream``/``replay``)
``readout``  another spiking neuron (the user's, kept by ``apply(readout="keep")``) followed by
             time-linear operations only up to the output (:mod:`.readout_neuron`); elsewhere
             such a neuron is unsupported
``bn``       a batch norm that needs the sequence statistics (training mode, or no running stats)
``maxpool``  a 1-, 2- or 3-d max pooling (representation: :mod:`.maxpool`)
``product``  the product of two spike-derived tensors (SEW ``AND``/``IAND``): bilinear, so the
             gradient at the time-mean inputs is the time mean of the per-step gradient
             (``d(a_t b_t)/da_t = b_t``, mean ``mean_t b_t``) when the gradient reaching it is
             the same at every step; the value is the measured time mean
``linear``   time-local and affine in its tensor inputs: applied to the time mean it gives the
             time mean of the output, and its gradient is the same (convolution, linear,
             average pooling, flatten, adds, concatenation, dropout with one mask over time,
             ``VotingLayer``, batch norm in eval mode, products with constants)
``const``    attributes and other non-tensor values

Anything else is unsupported and reported by name (:attr:`Graph.unsupported`); a model that
cannot be traced is reported with the module whose ``forward`` failed.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from snnplug_dsr.maxpool import pool_dims
from snnplug_dsr.neuron import DSRNode

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
LINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten, nn.Unflatten,
    nn.Identity,
)
ADDS = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
PRODUCTS = {operator.mul, operator.imul, torch.mul}
SHAPES_FN = {torch.flatten: 1, torch.cat: 1, torch.concat: 1}  # function -> position of `dim`
METHOD_ADDS = {"add", "sub", "__add__", "__radd__", "__sub__", "__rsub__"}
METHOD_SHAPES = {"flatten": 0}  # method -> position of `start_dim` after self


def _sj_leaf(m: nn.Module) -> bool:
    try:
        from spikingjelly.activation_based import base
    except ImportError:  # pragma: no cover - spikingjelly is a dependency
        return False
    mod = type(m).__module__
    return (isinstance(m, base.MemoryModule) or mod.startswith("spikingjelly.activation_based.layer")
            or mod.startswith("spikingjelly.activation_based.neuron"))


class _Tracer(fx.Tracer):
    """fx tracer with SpikingJelly modules and DSR neurons as leaves; remembers where it is."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.failed_in: str | None = None  # the innermost module whose forward raised

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, DSRNode) or _sj_leaf(m):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self.stack.append(self.path_of_module(m) or "<model>")
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.stack[-1]
            raise
        finally:
            self.stack.pop()


@dataclass
class Graph:
    """A traced model: nodes in execution order with their kinds (see the module docstring)."""

    model: nn.Module
    nodes: list[fx.Node]
    kind: dict[fx.Node, str]
    modules: dict[fx.Node, nn.Module]
    output: fx.Node
    unsupported: list[str] = field(default_factory=list)

    def deps(self, node: fx.Node) -> list[fx.Node]:
        return [d for d in node.all_input_nodes if d in self.kind]


class TraceFailure(Exception):
    """The model could not be traced (message names the module whose ``forward`` failed)."""


_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, list[fx.Node] | str]] = weakref.WeakKeyDictionary()


def _structure(model: nn.Module) -> tuple:
    """What a cached trace is valid for: every submodule's path, identity and class, and a
    ``forward`` assigned on an instance. Replacing, adding or removing a module (``snnplug.apply``,
    ``setattr``) changes it; training/eval mode does not need to, node kinds are re-derived at
    every call."""
    return tuple((path, id(m), type(m), m.__dict__.get("forward"))
                 for path, m in model.named_modules(remove_duplicate=False))


def clear_cache(model: nn.Module | None = None) -> None:
    """Forget the cached trace of ``model`` (all models if None). Needed only after changing a
    plain attribute that ``forward`` branches on (e.g. SEW's ``cnf``): module changes are detected."""
    if model is None:
        _CACHE.clear()
    else:
        _CACHE.pop(model, None)


def _live_nodes(model: nn.Module) -> list[fx.Node]:
    """The traced nodes the output depends on, in execution order; cached per model (keyed on
    :func:`_structure`, weakly, so a deleted model frees its entry). Raises :class:`TraceFailure`."""
    key = _structure(model)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        if isinstance(hit[1], str):
            raise TraceFailure(hit[1])
        return hit[1]
    tracer = _Tracer()
    try:
        g = tracer.trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, ... from user code
        where = tracer.failed_in or "<model>"
        mod = model.get_submodule(where) if where != "<model>" else model
        msg = f"{where} ({type(mod).__name__}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        _CACHE[model] = (key, msg)
        raise TraceFailure(msg) from None
    nodes = list(g.nodes)
    out = next(n for n in nodes if n.op == "output")
    live: set[fx.Node] = set()
    stack = [out]
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(n.all_input_nodes)
    nodes = [n for n in nodes if n in live]
    _CACHE[model] = (key, nodes)
    return nodes


def trace(model: nn.Module) -> Graph:
    """Trace ``model`` and classify its nodes; raises :class:`TraceFailure` if it cannot be traced.
    The ``torch.fx`` trace is cached per model (:func:`_live_nodes`); the kinds are derived anew
    at every call (they depend on training mode and batch-norm settings)."""
    nodes = _live_nodes(model)
    out = next(n for n in nodes if n.op == "output")
    kind: dict[fx.Node, str] = {}
    modules: dict[fx.Node, nn.Module] = {}
    bad: list[str] = []
    placeholders = [n for n in nodes if n.op == "placeholder"]
    for n in nodes:
        if n.op == "call_module":
            modules[n] = model.get_submodule(str(n.target))
        k = _classify(n, modules.get(n), kind, placeholders)
        if k is None:
            bad.append(_describe(n, modules.get(n)))
            k = "unsupported"
        kind[n] = k
    bad += _check_readouts(nodes, kind, modules)
    return Graph(model, nodes, kind, modules, out, bad)


def _check_readouts(nodes: list[fx.Node], kind: dict[fx.Node, str], modules: dict[fx.Node, nn.Module]
                    ) -> list[str]:
    """A non-DSR neuron is supported only at the readout: everything after it up to the output
    is time-linear (or another readout neuron). Others are marked unsupported and described."""
    bad = []
    for n in nodes:
        if kind[n] != "readout":
            continue
        stack, seen, ok = list(n.users), set(), True
        while stack and ok:
            u = stack.pop()
            if u in seen or u not in kind:
                continue
            seen.add(u)
            ok = kind[u] in ("linear", "readout", "const")
            stack.extend(u.users)
        if not ok:
            kind[n] = "unsupported"
            bad.append(f"{n.target} ({type(modules[n]).__name__}): a non-DSR neuron before other neurons "
                       f"or non-linear operations (only the readout may keep the user's neuron)")
    return bad


def _describe(n: fx.Node, m: nn.Module | None) -> str:
    if m is not None:
        return f"{n.target} ({type(m).__name__})"
    tgt = getattr(n.target, "__name__", str(n.target))
    return f"{n.name} ({n.op} {tgt})"


def _is_tensor_node(a: Any, kind: dict[fx.Node, str]) -> bool:
    return isinstance(a, fx.Node) and kind.get(a) not in (None, "const")


def _dim_arg(n: fx.Node, pos: int, name: str, default: int) -> Any:
    if len(n.args) > pos:
        return n.args[pos]
    return n.kwargs.get(name, default)


def _classify(n: fx.Node, m: nn.Module | None, kind: dict[fx.Node, str],
              placeholders: list[fx.Node]) -> str | None:
    if n.op == "placeholder":
        return "input" if n is placeholders[0] else "const"
    if n.op == "output":
        return "linear"
    if n.op == "get_attr":
        return "const"
    tensors = [a for a in n.all_input_nodes if _is_tensor_node(a, kind)]
    if n.op == "call_module":
        assert m is not None
        return _module_kind(m)
    if not tensors:
        return "const"
    if n.op == "call_function":
        f = n.target
        if f in ADDS or f is operator.neg:
            return "linear"
        if f in PRODUCTS:
            return "product" if len(tensors) == 2 else "linear"
        if f is operator.truediv:
            return "linear" if not _is_tensor_node(n.args[1], kind) else None
        if f in SHAPES_FN:
            d = _dim_arg(n, SHAPES_FN[f], "start_dim" if f is torch.flatten else "dim",
                         0 if f is not torch.flatten else 0)
            return "linear" if isinstance(d, int) and d != 0 else None
        return None
    if n.op == "call_method":
        name = str(n.target)
        if name in METHOD_ADDS or name == "neg":
            return "linear"
        if name in ("mul", "__mul__", "__rmul__"):
            return "product" if len(tensors) == 2 else "linear"
        if name in METHOD_SHAPES:
            d = _dim_arg(n, METHOD_SHAPES[name] + 1, "start_dim", 0)
            return "linear" if isinstance(d, int) and d != 0 else None
        return None
    return None


def _module_kind(m: nn.Module) -> str | None:
    if isinstance(m, DSRNode):
        return "neuron"
    if _spiking(m):
        return "readout"  # checked by _check_readouts
    if isinstance(m, BATCH_NORMS):
        return "bn" if needs_stats(m) else "linear"
    if pool_dims(m) is not None and not m.return_indices:
        return "maxpool"
    if isinstance(m, LINEAR_MODULES):
        return "linear"
    if isinstance(m, nn.modules.dropout._DropoutNd) and (not m.training or m.p == 0):
        return "linear"
    try:
        from spikingjelly.activation_based import layer
    except ImportError:  # pragma: no cover
        return None
    if isinstance(m, (layer.Dropout, layer.VotingLayer)):  # Dropout2d subclasses Dropout
        return "linear"  # one dropout mask for the whole sequence: a fixed per-element scale
    if isinstance(m, (layer.SeqToANNContainer, layer.MultiStepContainer)):
        # a container applying its modules at every step: linear if all of them are
        kids = list(m.children())
        return "linear" if kids and all(_module_kind(k) == "linear" for k in kids) else None
    return None


def _spiking(m: nn.Module) -> bool:
    from snnplug.backends.spikingjelly import is_spiking_neuron

    return is_spiking_neuron(m)


def needs_stats(bn: nn.Module) -> bool:
    """A batch norm that normalises with the statistics of its input (training mode, or no
    running statistics)."""
    return bool(bn.training or not bn.track_running_stats or bn.running_mean is None)
