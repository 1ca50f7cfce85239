"""torch.fx graph passes for the OPI converter: find activations, check support, fold BN.

The converted network runs the ANN graph on time-folded tensors ``[T·B, ...]`` (every stateless
op then acts on each step independently, exactly as in the ANN); only the spiking activations
unfold time. So an op is supported when it acts on each sample independently: conv, linear,
batch norm (eval), average pooling, flatten/reshape, dropout (eval), residual additions,
concatenation along a non-batch dim, means over non-batch dims, scaling by constants.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from snnplug.errors import UnsupportedModuleError

_STATELESS_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity,
)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d)
_FUNCTIONS = {
    operator.add, operator.iadd, operator.sub, torch.add, torch.sub, torch.flatten, torch.reshape,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d, F.dropout, operator.getitem, getattr,
}
_SCALARS = {operator.mul, operator.truediv, torch.mul, torch.div}
_METHODS = {"view", "reshape", "flatten", "size", "contiguous", "add", "add_", "sub", "dim"}
_REDUCTIONS = {"mean", "sum"}  # fine over non-batch dims only
_RELU_FUNCTIONS = {F.relu, torch.relu}
_SUPPORTED_TEXT = ("conv/linear/batch-norm/avg-pool/flatten/dropout modules, ReLU or clip activations "
                   "(snnplug_opi.ClipReLU, nn.Hardtanh(0, λ), nn.ReLU6), residual additions, "
                   "flatten/view/reshape, cat and mean over non-batch dims")


@dataclass
class Activation:
    """One activation call site: ``kind`` is "clip" (θ known = ``upper``) or "relu"
    (θ to be calibrated)."""

    node: fx.Node
    kind: str
    upper: float | None = None


def _where(node: fx.Node) -> str:
    return f"module {node.target!r}" if node.op == "call_module" else f"graph node {node.name!r}"


def _arg(node: fx.Node, i: int, name: str, default: object) -> object:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def activation_of(node: fx.Node, modules: dict[str, nn.Module]) -> Activation | None:
    """The activation at ``node``, or None if it is not a ReLU/clip activation."""
    if node.op == "call_module":
        m = modules.get(node.target)
        if type(m) is nn.ReLU:
            return Activation(node, "relu")
        if isinstance(m, nn.Hardtanh) and float(m.min_val) == 0.0 and float(m.max_val) > 0.0:
            return Activation(node, "clip", float(m.max_val))
    elif node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return Activation(node, "relu")
        if node.target is F.relu6:
            return Activation(node, "clip", 6.0)
        if node.target is F.hardtanh:
            lo, hi = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo == 0 and hi > 0:
                return Activation(node, "clip", float(hi))
    elif node.op == "call_method" and node.target in ("relu", "relu_"):
        return Activation(node, "relu")
    return None


def activations(gm: fx.GraphModule) -> list[Activation]:
    modules = dict(gm.named_modules())
    found = []
    for node in gm.graph.nodes:
        act = activation_of(node, modules)
        if act is not None:
            found.append(act)
    return found


def _dims_avoid_batch(node: fx.Node) -> bool:
    dim = _arg(node, 1, "dim", None)
    if dim is None:
        return False
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return all(isinstance(d, int) and d != 0 for d in dims)


def check_supported(gm: fx.GraphModule) -> None:
    """Raise :class:`UnsupportedModuleError` naming the first node the converter cannot handle."""
    modules = dict(gm.named_modules())
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedModuleError(
            f"the OPI converter handles models with exactly one input tensor; this forward takes "
            f"{len(placeholders)} ({', '.join(n.name for n in placeholders)})"
        )
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr") or activation_of(node, modules):
            continue
        if node.op == "call_module":
            m = modules[node.target]
            if isinstance(m, _MAXPOOL):
                raise UnsupportedModuleError(
                    f"module {node.target!r} ({type(m).__name__}) is not supported by the OPI "
                    f"converter: spike rates through max pooling over-estimate the ANN's value. "
                    f"Replace it by the average pool of the same size and fine-tune "
                    f"(snnplug.strategy('opi-ann').prepare(model) does the swap)"
                )
            if isinstance(m, nn.Hardtanh):
                raise UnsupportedModuleError(
                    f"module {node.target!r} is Hardtanh({m.min_val}, {m.max_val}); only clips with "
                    f"lower bound 0 map to an IF neuron. Use ClipReLU/nn.Hardtanh(0.0, λ)"
                )
            if not isinstance(m, _STATELESS_MODULES):
                raise UnsupportedModuleError(
                    f"module {node.target!r} ({type(m).__name__}) is not supported by the OPI "
                    f"converter. Supported: {_SUPPORTED_TEXT}. Replace it (e.g. GELU/SiLU -> "
                    f"ClipReLU) and retrain, or convert the supported part of the model only"
                )
            continue
        ok = False
        if node.op == "call_function":
            if node.target in _FUNCTIONS:
                ok = True
            elif node.target in _SCALARS:
                ok = sum(isinstance(a, fx.Node) for a in node.args) <= 1
            elif node.target is torch.cat:
                dim = _arg(node, 1, "dim", 0)
                ok = isinstance(dim, int) and dim != 0
            elif node.target in (torch.mean, torch.sum):
                ok = _dims_avoid_batch(node)
        elif node.op == "call_method":
            if node.target in _METHODS:
                ok = True
            elif node.target in _REDUCTIONS:
                ok = _dims_avoid_batch(node)
            elif node.target in ("mul", "div", "__mul__", "__truediv__"):
                ok = not any(isinstance(a, fx.Node) for a in node.args[1:])
        if not ok:
            what = getattr(node.target, "__name__", str(node.target))
            raise UnsupportedModuleError(
                f"{_where(node)} ({node.op} {what}) is not supported by the OPI converter: it may "
                f"mix samples or is not an affine per-sample op. Supported: {_SUPPORTED_TEXT}. "
                f"Rewrite that part of forward() with supported ops (e.g. a MaxPool as AvgPool, "
                f"x.view(x.size(0), -1) instead of a hard-coded batch size)"
            )


def input_rank(gm: fx.GraphModule) -> int | None:
    """Rank of one step's input ``[B, ...]`` when the first layer fixes it (Conv{k}d: k + 2)."""
    modules = dict(gm.named_modules())
    ph = next(n for n in gm.graph.nodes if n.op == "placeholder")
    ranks = {nn.Conv1d: 3, nn.Conv2d: 4, nn.Conv3d: 5}
    found = {ranks[type(modules[u.target])] for u in ph.users
             if u.op == "call_module" and type(modules.get(u.target)) in ranks}
    return found.pop() if len(found) == 1 else None


def fold_batch_norms(gm: fx.GraphModule) -> int:
    """Fold every eval-mode BatchNorm that directly follows a conv/linear used only by it
    (``W' = γ/σ·W``, ``b' = γ/σ·(b − μ) + β``). Returns the number folded; others are kept."""
    modules = dict(gm.named_modules())
    pairs = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d),
             (nn.Linear, nn.BatchNorm1d))
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        prev = node.args[0]
        if prev.op != "call_module" or len(prev.users) != 1:
            continue
        bn, layer = modules[node.target], modules[prev.target]
        if not any(type(layer) is a and type(bn) is b for a, b in pairs):
            continue
        if bn.training or not bn.track_running_stats or bn.running_mean is None:
            continue
        if isinstance(layer, nn.Linear):
            if layer.out_features != bn.num_features:
                continue
            fused = fuse_linear_bn_eval(layer, bn)
        else:
            fused = fuse_conv_bn_eval(layer, bn)
        parent, _, leaf = prev.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, leaf, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        folded += 1
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return folded
