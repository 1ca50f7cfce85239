"""snnTorch <-> SpikingJelly: run an snnTorch model as a SpikingJelly multi-step model and back.

Supported snnTorch models (``init_hidden=True`` neurons, one call of the model per time step)::

    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(128, 10), snn.Leaky(beta=0.9, init_hidden=True))
    sj_net = snnplug.adapters.snntorch.to_spikingjelly(net)    # [T, B, ...] -> [T, B, 10]

* ``nn.Sequential`` (nested too) is converted layer by layer: neurons become
  :mod:`snnplug.adapters.nodes` (``snntorch.Leaky`` -> ``LIFNode``, or ``IFNode`` when beta is
  fixed at 1; ``snntorch.Synaptic`` -> ``SynapticNode``), batch norms keep per-step statistics,
  other (stateless) layers run once on ``[T*B, ...]`` (``layers="vectorized"``, default) or once
  per step (``layers="per-step"``).
* any other module (a custom ``forward``) is called once per time step, as snnTorch does, with
  its neurons replaced by single-step nodes (exact, not vectorised). Its ``forward`` must compute
  one time step: a ``forward`` that loops over time itself is not convertible.
* ``Leaky`` (every reset mechanism, both ``reset_delay``, scalar or per-neuron, learnable or
  fixed beta/threshold/graded spike factor) and ``Synaptic``; snnTorch's surrogates are read
  from the neuron (:mod:`snnplug.adapters.surrogates`). Other snnTorch modules (``RLeaky``,
  ``RSynaptic``, ``Alpha``, ``Lapicque``, ``SLSTM``, ``SConv2dLSTM``, ``LeakyParallel``,
  ``BatchNormTT``..., and ``init_hidden=False`` neurons) raise
  :class:`~snnplug.errors.UnsupportedModuleError` naming the module.

Spikes are identical to snnTorch's time loop on the same weights and inputs (the neuron arithmetic
is done in snnTorch's order, ties at the threshold included). With ``layers="vectorized"`` a
BLAS may round a matrix product on ``T*B`` rows differently (by an ulp) from ``T`` products on
``B`` rows (observed with MKL for ``B < 8``); ``layers="per-step"`` rules that out.

snnTorch's ``utils.reset`` keeps module-level globals and misses nested neurons; :func:`reset`
resets every neuron of the model through its own ``reset_mem()``. :func:`is_snntorch_model` never
imports snnTorch.
"""

from __future__ import annotations

import copy
import sys
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from snnplug.errors import UnsupportedModuleError
from snnplug.strategies import OptimConfig, Strategy

LAYER_MODES = ("vectorized", "per-step")
_CONVERTIBLE = ("Leaky", "Synaptic")


# -- recognising snnTorch modules (cheap; never imports snnTorch) --------------------------

def _is_snntorch_module(m: nn.Module) -> bool:
    return type(m).__module__.split(".", 1)[0] == "snntorch"


def is_snntorch_neuron(m: nn.Module) -> bool:
    """True for an snnTorch spiking neuron (a ``snntorch.SpikingNeuron``). Does not import snnTorch."""
    if not _is_snntorch_module(m):
        return False
    snn = sys.modules.get("snntorch")
    base = getattr(snn, "SpikingNeuron", None)
    return base is not None and isinstance(m, base)


def is_snntorch_model(model: Any) -> bool:
    """True when ``model`` holds an snnTorch module. Does not import snnTorch (if it is not
    imported, no model can hold one)."""
    if "snntorch" not in sys.modules or not isinstance(model, nn.Module):
        return False
    return any(_is_snntorch_module(m) for m in model.modules())


# -- running snnTorch models -----------------------------------------------------------------

def reset(net: nn.Module) -> None:
    """Reset every snnTorch neuron of ``net`` (nested ones too) with its own ``reset_mem()``.

    ``snntorch.utils.reset`` decides what to reset from module-level globals and only looks at
    the top level; this does it per module.
    """
    for m in net.modules():
        if _is_snntorch_module(m) and callable(getattr(m, "reset_mem", None)):
            m.reset_mem()


def run(net: nn.Module, x_seq: torch.Tensor) -> Any:
    """snnTorch's own time loop: reset, call ``net(x_seq[t])`` for each step, stack the outputs.

    Returns ``[T, B, ...]`` (or a tuple of them when the model returns tuples, e.g. a last
    neuron with ``output=True``).
    """
    from snnplug.checks import check_sequence

    check_sequence(x_seq, who="snntorch run", min_rank=2)
    reset(net)
    outs = [net(x_seq[t]) for t in range(x_seq.shape[0])]
    if isinstance(outs[0], (tuple, list)):
        return tuple(torch.stack(list(o)) for o in zip(*outs, strict=True))
    return torch.stack(outs)


# -- snnTorch -> SpikingJelly ------------------------------------------------------------------

def _neuron_to_node(m: nn.Module, path: str, step_mode: str, impl: str) -> nn.Module:
    from snnplug.adapters import nodes

    name = type(m).__name__
    if name not in _CONVERTIBLE or not is_snntorch_neuron(m):
        raise UnsupportedModuleError(
            f"{path or 'model'} is an snnTorch {name}, which the adapter cannot convert (supported "
            f"neurons: {', '.join(_CONVERTIBLE)} with init_hidden=True)"
        )
    try:
        node = (nodes.leaky_from_snntorch if name == "Leaky" else nodes.synaptic_from_snntorch)(
            m, step_mode=step_mode, impl=impl)
    except UnsupportedModuleError as exc:
        raise UnsupportedModuleError(f"{path or 'model'}: {exc}") from None
    node.train(m.training)
    return node.to(m.threshold.device)


def _check_supported(m: nn.Module, path: str) -> None:
    if _is_snntorch_module(m) and not is_snntorch_neuron(m):
        hint = " (use snnplug's 'bntt' normalizer instead)" if "BatchNormTT" in type(m).__name__ or \
            type(m).__module__.endswith("bntt") else ""
        raise UnsupportedModuleError(
            f"{path or 'model'} is an snnTorch {type(m).__name__}, which the adapter cannot convert{hint}"
        )


def _per_step_custom(m: nn.Module, path: str, impl: str) -> nn.Module:
    """A custom module called once per step, its snnTorch neurons replaced by single-step nodes."""
    from snnplug.adapters.layers import per_step

    inner = copy.deepcopy(m)
    if is_snntorch_neuron(inner):
        return _neuron_to_node(inner, path, "m", impl)
    for parent in list(inner.modules()):
        for name, child in list(parent.named_children()):
            cpath = f"{path}.{name}" if path else name
            if is_snntorch_neuron(child):
                setattr(parent, name, _neuron_to_node(child, cpath, "s", "autograd"))
            else:
                _check_supported(child, cpath)
    return per_step(inner)


def _convert(m: nn.Module, path: str, layers: str, impl: str) -> nn.Module:
    from snnplug.adapters import layers as L

    _check_supported(m, path)
    if is_snntorch_neuron(m):
        return _neuron_to_node(m, path, "m", impl)
    if type(m) is nn.Sequential:
        out = nn.Sequential(OrderedDict(
            (name, _convert(child, f"{path}.{name}" if path else name, layers, impl))
            for name, child in m.named_children()))
        out.training = m.training  # children keep their own modes
        return out
    if L.is_batchnorm(m):
        return L.stepwise_batchnorm(m)
    if isinstance(m, (nn.ModuleList, nn.ModuleDict)):
        raise UnsupportedModuleError(
            f"{path or 'model'} is an nn.{type(m).__name__}, which has no forward: a model that indexes it by "
            f"time step (snnTorch's BatchNormTT1d/2d return one) is not convertible; use snnplug's 'bntt' "
            f"normalizer on the converted model instead")
    if next(m.children(), None) is None:  # a leaf: stateless layer
        return L.vectorized(m) if layers == "vectorized" else L.per_step(m)
    return _per_step_custom(m, path, impl)


def to_spikingjelly(net: nn.Module, *, layers: str = "vectorized", impl: str = "auto") -> nn.Module:
    """A SpikingJelly multi-step copy of the snnTorch model ``net``: ``[T, B, ...] -> [T, B, ...]``.

    ``layers``: ``"vectorized"`` (stateless layers once on ``[T*B, ...]``) or ``"per-step"``
    (once per step, bit-identical to snnTorch whatever the BLAS). ``impl``: the neurons'
    implementation, ``"auto"`` (a fused sequence with hand-written BPTT when the surrogate is
    known, else autograd), ``"fused"`` or ``"autograd"``. The original is not modified; reset the
    result with ``spikingjelly.activation_based.functional.reset_net`` before each sequence.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"to_spikingjelly expects an nn.Module, got {type(net).__name__}")
    if layers not in LAYER_MODES:
        raise ValueError(f"layers must be one of {LAYER_MODES}, got {layers!r}")
    from snnplug.adapters.nodes import IMPLS

    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    out = _convert(net, "", layers, impl)
    from snnplug.backends.spikingjelly import invalidate_reset_cache

    invalidate_reset_cache(out)
    return out


# -- SpikingJelly -> snnTorch ------------------------------------------------------------------

def _sj_stock_neuron_error(m: nn.Module, path: str) -> UnsupportedModuleError:
    return UnsupportedModuleError(
        f"{path or 'model'} is a SpikingJelly {type(m).__name__}; snnTorch cannot represent it exactly "
        f"(SpikingJelly neurons fire on v >= threshold and reset in the same step, snnTorch's on "
        f"mem > threshold with its own reset order), so from_spikingjelly only converts the adapter's "
        f"own nodes (snnplug.adapters.nodes) and stateless layers"
    )


def _back(m: nn.Module, path: str) -> nn.Module:
    from snnplug.adapters import layers as L
    from snnplug.adapters import nodes
    from snnplug.backends.spikingjelly import sj

    ab = sj()
    if isinstance(m, nodes.SnnTorchLeakyNode):
        return nodes.leaky_to_snntorch(m).to(m.threshold.device)
    if isinstance(m, nodes.SynapticNode):
        return nodes.synaptic_to_snntorch(m).to(m.threshold.device)
    if isinstance(m, (ab.layer.SeqToANNContainer, ab.layer.MultiStepContainer)):
        kids = [_back(c, f"{path}.{n}") for n, c in m.named_children()]
        return kids[0] if len(kids) == 1 else nn.Sequential(*kids)
    if type(m) is nn.Sequential:
        return nn.Sequential(OrderedDict((n, _back(c, f"{path}.{n}" if path else n)) for n, c in m.named_children()))
    if L.is_batchnorm(m) and getattr(m, "step_mode", "s") == "m":
        base = next(b for b in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) if isinstance(m, b))
        bn = base(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                  track_running_stats=m.track_running_stats)
        bn.load_state_dict(m.state_dict())
        return bn.train(m.training)
    if isinstance(m, ab.base.MemoryModule):
        if isinstance(m, ab.neuron.BaseNode) or getattr(m, "snnplug_spiking", False):
            raise _sj_stock_neuron_error(m, path)
        raise UnsupportedModuleError(f"{path or 'model'} ({type(m).__name__}) is a stateful SpikingJelly "
                                     f"module with no snnTorch equivalent")
    if next(m.children(), None) is not None:
        raise UnsupportedModuleError(f"{path or 'model'} ({type(m).__name__}) is a custom container; "
                                     f"from_spikingjelly converts nn.Sequential models")
    new = copy.deepcopy(m)
    if hasattr(new, "step_mode"):
        new.step_mode = "s"
    return new


def from_spikingjelly(net: nn.Module) -> nn.Module:
    """The snnTorch model (``init_hidden=True`` neurons, one call per step) equivalent to a
    SpikingJelly multi-step model built of the adapter's nodes and stateless layers, as
    :func:`to_spikingjelly` produces. Imports snnTorch."""
    import snntorch  # noqa: F401 - fail early with ImportError when it is missing

    return _back(net, "")


# -- pairing weights ------------------------------------------------------------------------------

def parameter_pairs(snn_net: nn.Module, sj_net: nn.Module) -> list[tuple[str, nn.Parameter, nn.Parameter]]:
    """``(snnTorch name, snnTorch parameter, SpikingJelly parameter)`` in model order.

    Conversion keeps the order of parameters (containers only add name levels), so gradients and
    weights can be compared one to one.
    """
    a, b = list(snn_net.named_parameters()), list(sj_net.named_parameters())
    if len(a) != len(b) or any(p.shape != q.shape for (_, p), (_, q) in zip(a, b, strict=False)):
        raise ValueError("the two models do not have the same parameters in the same order")
    return [(n, p, q) for (n, p), (_, q) in zip(a, b, strict=True)]


# -- training an snnTorch model with snnplug's engine -----------------------------------------

class SnnTorchLoop(Strategy):
    """An snnTorch model in snnTorch's own time loop (:func:`run`), for
    :func:`snnplug.engine.train` / :func:`snnplug.engine.evaluate_anytime`: direct input,
    spike-count readout ``sum_t out_t`` (the first output of tuple-returning models),
    cross-entropy, Adam at ``lr`` without a schedule."""

    name = "snntorch-loop"

    def __init__(self, *, T: int = 32, frames: bool = False, lr: float = 2e-3) -> None:
        super().__init__(T=T, frames=frames)
        self.lr = float(lr)

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "lr": self.lr}

    def optim_config(self) -> OptimConfig:
        return OptimConfig(name="adam", lr=self.lr, schedule="none")

    def run(self, model: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        out = run(model, x_seq)
        return out[0] if isinstance(out, tuple) else out

    def readout(self, out_seq: torch.Tensor) -> torch.Tensor:
        return out_seq.sum(0)
