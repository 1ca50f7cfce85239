"""T-independent backward for DSR networks: one spiking simulation without autograd graph, then
one "ANN-sized" pass on representations whose backward is the DSR gradient.

Why this is exact. In DSR the gradient reaching a neuron layer's input is the same at every
step (``dL/dx_t = G/T * mask``). A time-linear layer ``y_t = W z_t + b`` between neurons
therefore gets ``dL/dW = sum_t (G/T) z_t^T = G * mean_t(z_t)^T``: the per-step weight gradient
equals the gradient of the same layer applied once to the time-mean input. So:

1. **Simulate** (``torch.no_grad``, layer by layer in chunks of ``chunk`` steps so memory does
   not grow with T, :mod:`.layerwise`): every DSR neuron records its mean input and firing
   rate (``DSRNode.stream`` into a :class:`.neuron.Record`); nothing per-step is kept.
2. **Representation pass** (with autograd): run the model's graph once on ``mean_t x_t``
   (shape ``[1, B, ...]``). Each DSR neuron returns its *measured* rate (``DSRNode.replay``,
   :class:`.functional.ReplayFunction`), whose backward is the DSR mapping gradient.
   Values equal the time-means of the simulation, so the returned logits equal the simulated
   rate readout.

The model is traced with ``torch.fx`` (:mod:`.graph`): residual blocks, SEW connections,
concatenation, flatten, pooling (average and max, :mod:`.maxpool`), batch norm, SpikingJelly's
``Dropout`` (one mask over time) and ``VotingLayer`` are supported between neurons. Other
operations (other neurons, ``nn.Dropout`` in training, time reductions inside the model, ...)
and models that cannot be traced are reported by :func:`unsupported_modules`; use the per-step
path for them. Max pooling and products of spike trains (SEW ``AND``/``IAND``) return their
measured time means; their gradients are the time means of the per-step gradients when the
gradient reaching them is the same at every step (:mod:`.maxpool`, :mod:`.graph`).

Batch norm in training mode normalises each step with statistics over ``T*B`` (as SpikingJelly's
multi-step BN and the authors' code do). The simulation computes exactly those statistics (a sweep
over the layers feeding the BN before normalising, since step 1 cannot be normalised before
step T is known) and updates the running statistics once. The
representation pass normalises with the same statistics, so values are exact; its gradient
through the variance uses ``mean_t x_t`` in place of each ``x_t``, which drops the within-time
covariance term of the per-step BN backward. Without batch norm (or with BN in eval mode) the
gradients equal the per-step implementation's.
"""

from __future__ import annotations

import torch
from torch import nn

from snnplug.backends.spikingjelly import reset
from snnplug.checks import check_sequence
from snnplug.errors import SnnplugError, TimeStepError, UnsupportedModuleError

from snnplug_dsr.bn_stats import BNStats
from snnplug_dsr.graph import Graph, TraceFailure, trace
from snnplug_dsr.layerwise import DEFAULT_CHUNK, Executor
from snnplug_dsr.neuron import DSRNode


def dsr_neurons(model: nn.Module) -> list[DSRNode]:
    return [m for m in model.modules() if isinstance(m, DSRNode)]


def _trace(model: nn.Module) -> tuple[Graph | None, list[str]]:
    try:
        g = trace(model)
    except TraceFailure as e:
        return None, [f"untraceable: {e}"]
    return g, list(g.unsupported)


def unsupported_modules(model: nn.Module) -> list[str]:
    """Operations the representation pass cannot handle (``"name (Class)"`` for modules, the fx
    node for functions), or the module whose ``forward`` could not be traced."""
    return _trace(model)[1]


def bn_replay(x2: torch.Tensor, st: BNStats, bn: nn.Module) -> torch.Tensor:
    """BN on representations with the simulation's statistics (values exact, see module doc)."""
    if st.mean is None or st.var is None:
        raise SnnplugError("batch norm without statistics in the representation pass (internal)")
    dims = [0, *range(2, x2.dim())]
    var_b, mu_b = torch.var_mean(x2, dims, unbiased=False)
    mu = mu_b + (st.mean.to(x2.dtype) - mu_b).detach()
    var = var_b + (st.var.to(x2.dtype) - var_b).detach()
    shape = [1, x2.shape[1]] + [1] * (x2.dim() - 2)
    y = (x2 - mu.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


def representation_forward(model: nn.Module, x_seq: torch.Tensor, *, chunk: int | None = None,
                           layerwise: bool = True) -> torch.Tensor:
    """Rate readout ``[B, C]`` of ``model`` on ``x_seq [T, B, ...]`` whose backward is DSR's,
    computed without a per-step graph (see the module docstring).

    The model is traced (:mod:`.graph`) and simulated layer by layer with spikes kept as bits
    (:mod:`.layerwise`), ``chunk`` steps at a time (default ``layerwise.DEFAULT_CHUNK``): memory
    independent of T, each layer computed once (twice when it feeds a training-mode batch norm).
    ``layerwise=False`` simulates every operation on all T steps at once instead (memory grows
    with T; the reference the layer-wise simulation is tested against; ``chunk`` is ignored).
    Raises :class:`UnsupportedModuleError` naming the operations that are not supported.
    """
    check_sequence(x_seq, who="representation_forward", min_rank=3)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise TypeError(f"chunk must be a positive int or None, got {chunk!r}")
    neurons = dsr_neurons(model)
    if not neurons:
        raise SnnplugError("the model has no DSR neurons: prepare it with snnplug.apply(model, "
                           "neuron='dsr-if', T=...) or DSRStrategy.prepare(model)")
    graph, bad = _trace(model)
    if bad or graph is None:
        raise UnsupportedModuleError(
            "the T-independent DSR backward needs operations it can map to spike representations "
            "between neurons; found " + ", ".join(bad) + ". Use DSRStrategy(backward='per-step') "
            "for this model")
    T = x_seq.shape[0]
    wrong = sorted({n.T for n in neurons if n.T != T})
    if wrong:
        raise TimeStepError(f"the input has {T} steps but the model's DSR neurons were built for "
                            f"T={wrong}; feed that many steps or rebuild them with T={T}")
    reset(model)
    # a batch norm's input is kept between its statistics sweep and the normalising pass within
    # the size of the parameters (what the gradients will take anyway): memory stays flat in T
    budget = sum(p.numel() * p.element_size() for p in model.parameters())
    ex = Executor(graph, x_seq, DEFAULT_CHUNK if chunk is None else chunk, cache_bytes=budget)
    readout = ex.simulate_layerwise() if layerwise else ex.simulate_whole()
    ann = ex.replay()
    return ann + (readout.to(ann.dtype) - ann).detach()
