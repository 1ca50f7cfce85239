"""The readout neurons of a model: the spiking layers after its last weight layer.

Many SNN scripts read the output off the *firing rate of a last spiking layer* (SpikingJelly's
tutorial ``CSNN``: ``Linear -> IFNode``, then ``mean over T``; the snnTorch tutorials:
``Linear -> Leaky``, rate or count losses). A training method that changes a neuron's firing
rule or threshold (DSR's ``alpha * Vth`` rule and trained threshold, noise injection) changes
what that readout means: the user's loss (e.g. MSE between the rate and a one-hot label) was
written for the user's neuron. ``snnplug.apply(..., readout="keep")`` (the default) therefore
leaves these neurons as the user wrote them and replaces the hidden ones
(:func:`readout_neurons` finds them).

Definition. Walk the model's dataflow backwards from its output, through every operation that is
not a *weight layer* (a module with a parameter of two or more dimensions: convolution, linear,
or a container holding one), and collect the spiking neurons passed on the way. They are the
readout if the walk reached at least one weight layer (a model made of neurons only has no
readout). The dataflow comes from ``torch.fx`` tracing (SpikingJelly's neurons and layers as
leaves); a model that cannot be traced falls back to module registration order: the neurons
registered after the last weight layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import fx, nn

from snnplug.backends import spikingjelly as sjb


@dataclass(frozen=True)
class Readout:
    """Paths of the readout neurons and how they were found (``"traced"`` | ``"module order"``)."""

    paths: tuple[str, ...]
    how: str


def _is_weight_layer(m: nn.Module) -> bool:
    return any(p.dim() >= 2 for p in m.parameters())


def _sj_module(m: nn.Module) -> bool:
    return type(m).__module__.startswith("spikingjelly.")


class _Tracer(fx.Tracer):
    """Neurons, SpikingJelly modules and torch's own modules are leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return sjb.is_spiking_neuron(m) or _sj_module(m) or super().is_leaf_module(m, qualname)


def _traced(model: nn.Module) -> tuple[str, ...] | None:
    """Readout paths from the fx dataflow, or None if the model cannot be traced."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # fx raises TraceError, TypeError, ... from user code
        return None
    out = next(n for n in graph.nodes if n.op == "output")
    found: list[str] = []
    weights = False
    seen: set[fx.Node] = set()
    stack = list(out.all_input_nodes)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "call_module":
            m = model.get_submodule(str(n.target))
            if sjb.is_spiking_neuron(m):
                found.append(str(n.target))
            elif _is_weight_layer(m):
                weights = True
                continue  # the walk stops at a weight layer
        elif n.op == "get_attr":
            continue
        stack.extend(n.all_input_nodes)
    return tuple(sorted(set(found))) if weights else ()


def _by_order(model: nn.Module) -> tuple[str, ...]:
    """Neurons registered after the last weight layer (leaf modules in registration order)."""
    last_weight, neurons = -1, []
    for i, (path, m) in enumerate(model.named_modules()):
        if sjb.is_spiking_neuron(m):
            neurons.append((i, path))
        elif not any(True for _ in m.children()) and _is_weight_layer(m):
            last_weight = i
    if last_weight < 0:
        return ()
    return tuple(p for i, p in neurons if i > last_weight)


def readout_neurons(model: nn.Module) -> Readout:
    """The readout neurons of ``model`` (see the module docstring), by dataflow when it can be
    traced, else by registration order."""
    paths = _traced(model)
    if paths is not None:
        return Readout(paths, "traced")
    return Readout(_by_order(model), "module order")
