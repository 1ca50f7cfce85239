"""T-independent backward for DSR networks: one spiking simulation without autograd graph, then
one "ANN-sized" pass on representations whose backward is the DSR gradient.

Why this is exact. In DSR the gradient reaching a neuron layer's input is the same at every
step (``dL/dx_t = G/T * mask``). A time-linear layer ``y_t = W z_t + b`` between neurons
therefore gets ``dL/dW = sum_t (G/T) z_t^T = G * mean_t(z_t)^T``: the per-step weight gradient
equals the gradient of the same layer applied once to the time-mean input. So:

1. **Simulate** (``torch.no_grad``, optionally in chunks of ``chunk`` steps so memory does not
   grow with T): every DSR neuron records its mean input and firing rate; nothing per-step is
   kept.
2. **Representation pass** (with autograd): run the model once on ``mean_t x_t`` (shape
   ``[1, B, ...]``). Each DSR neuron returns its *measured* rate through :class:`ReplayFunction`,
   whose backward is the DSR mapping gradient. Values equal the time-means of the simulation,
   so the returned logits equal the simulated rate readout.

Supported between neurons: convolutions, linear layers, average pooling, flatten, identity,
dropout in eval mode, and batch norm. Other modules (max pooling, other neurons, training-mode
dropout) are reported by :func:`unsupported_modules`; use the per-step path for them.

Batch norm in training mode normalises each step with statistics over ``T*B`` (as SpikingJelly's
multi-step BN and the authors' code do). The simulation computes exactly those statistics (when
streamed in chunks, one extra partial sweep per BN layer is needed, since step 1 cannot be
normalised before step T is known) and updates the running statistics once. The
representation pass normalises with the same statistics, so values are exact; its gradient
through the variance uses ``mean_t x_t`` in place of each ``x_t``, which drops the within-time
covariance term of the per-step BN backward. Without batch norm (or with BN in eval mode) the
gradients equal the per-step implementation's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as Fn
from torch import nn

from snnplug.backends.spikingjelly import reset
from snnplug.checks import check_sequence
from snnplug.errors import SnnplugError, TimeStepError, UnsupportedModuleError

from snnplug_dsr.bn_stats import BNStats
from snnplug_dsr.layerwise import DEFAULT_CHUNK, chain_of, simulate_chain
from snnplug_dsr.neuron import DSRNode, Record

TIME_LINEAR: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten, nn.Unflatten,
    nn.Identity,
)
BATCH_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def dsr_neurons(model: nn.Module) -> list[DSRNode]:
    return [m for m in model.modules() if isinstance(m, DSRNode)]


def unsupported_modules(model: nn.Module) -> list[str]:
    """Leaf modules the representation pass cannot handle exactly (``"name (Class)"``)."""
    bad = []
    for name, m in model.named_modules():
        if isinstance(m, DSRNode) or isinstance(m, TIME_LINEAR) or isinstance(m, BATCH_NORMS):
            continue
        if isinstance(m, nn.modules.dropout._DropoutNd) and (not m.training or m.p == 0):
            continue
        if next(m.children(), None) is not None and not any(True for _ in m.parameters(recurse=False)):
            continue  # a container: its children are checked
        bad.append(f"{name or '<model>'} ({type(m).__name__})")
    return bad


class _Stop(BaseException):
    """Ends one chunk of a statistics sweep at the batch norm being measured (internal)."""


class _Engine:
    """Drives one simulation + representation pass over a model."""

    def __init__(self, model: nn.Module, chunk: int | None, layerwise: bool = True) -> None:
        self.model = model
        self.chunk = chunk
        self.layerwise = layerwise
        self.neurons = dsr_neurons(model)
        self.bns = {m: BNStats(m) for m in model.modules() if isinstance(m, BATCH_NORMS)
                    and (m.training or not m.track_running_stats or m.running_mean is None)}
        self.phase = "stream"
        self.single_chunk = True
        self.target: BNStats | None = None
        self.constant_input = False
        self.T = 0
        self.cur_len = 0

    def _time_constant(self) -> bool:
        return self.constant_input and all(n._record is not None and n._record.steps == 0
                                           for n in self.neurons)

    # -- batch norm override ------------------------------------------------------------------
    def _bn_forward(self, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
        st = self.bns[bn]
        x2 = st.flat(x)
        if self.phase == "replay":
            y = _bn_replay(x2, st, bn)
        elif st.mean is not None:
            y = Fn.batch_norm(x2, st.mean, st.var, bn.weight, bn.bias, False, 0.0, bn.eps)
        elif self.single_chunk or self._time_constant():
            # the whole sequence is here, or this BN's input cannot vary in time (constant
            # input, no neuron run yet): this chunk's statistics are the sequence's
            y = st.accumulate(x2)
            if not self.single_chunk:  # count the steps this chunk stands for
                st.stand_for(self.cur_len, self.T)
            st.finalize(x2.dtype)
        else:
            if self.target is None:
                self.target = st
            if self.target is not st:
                raise SnnplugError("batch norm reached after the one being measured (internal)")
            st.accumulate(x2)
            raise _Stop
        return y.view(*x.shape[:2], *y.shape[1:]) if st.multi_step else y

    @contextmanager
    def patched(self) -> Iterator[None]:
        saved = {}
        try:
            for bn in self.bns:
                saved[bn] = bn.__dict__.get("forward")
                bn.forward = (lambda b: (lambda x: self._bn_forward(b, x)))(bn)
            yield
        finally:
            for bn, old in saved.items():
                del bn.forward
                if old is not None:
                    bn.forward = old
            for n in self.neurons:
                n._mode = "plain"

    # -- phases ---------------------------------------------------------------------------------
    def simulate(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spiking forward without graph; returns the time-mean of the model output."""
        T = self.T = x_seq.shape[0]
        chain = chain_of(self.model, list(self.bns)) if self.layerwise else None
        if chain is not None:
            return self._simulate_chain(chain, x_seq)
        chunk = T if self.chunk is None else min(self.chunk, T)
        self.single_chunk = chunk >= T
        # direct encoding: an expanded view, constant over time
        self.constant_input = T == 1 or x_seq.stride(0) == 0
        self._start_stream()
        with torch.no_grad():
            while True:
                self._new_records()
                self.target = None
                total, stopped = None, False
                for s in range(0, T, chunk):
                    self.cur_len = min(chunk, T - s)
                    try:
                        y = self.model(x_seq[s:s + chunk])
                    except _Stop:
                        stopped = True
                        continue
                    part = y.sum(0)
                    total = part if total is None else total + part
                if stopped and self.target is not None:
                    self.target.finalize(x_seq.dtype if x_seq.is_floating_point() else torch.float32)
                    continue
                if total is None:
                    raise SnnplugError("the model produced no output (internal)")
                return total / T

    def _start_stream(self) -> None:
        self.phase = "stream"
        for n in self.neurons:
            n._mode = "stream"

    def _new_records(self) -> None:
        """Reset the model's state and start an empty record per DSR neuron."""
        reset(self.model)
        for n in self.neurons:
            n._record = Record(T=self.T)

    def _simulate_chain(self, chain: list[nn.Module], x_seq: torch.Tensor) -> torch.Tensor:
        """Layer by layer, ``chunk`` steps at a time (see :mod:`.layerwise`)."""
        self._start_stream()
        self._new_records()
        chunk = DEFAULT_CHUNK if self.chunk is None else self.chunk
        return simulate_chain(chain, x_seq, min(chunk, self.T), self.bns)

    def replay(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The representation pass: ``[1, B, ...]`` in, ``[B, C]`` out, with autograd."""
        self.phase = "replay"
        for n in self.neurons:
            n._mode = "replay"
        out = self.model(x_seq.mean(0, keepdim=True))
        if not isinstance(out, torch.Tensor) or out.shape[0] != 1:
            raise SnnplugError("the model must return a time-major tensor [T, B, ...]")
        return out[0]


def _bn_replay(x2: torch.Tensor, st: BNStats, bn: nn.Module) -> torch.Tensor:
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

    Sequential models (``nn.Sequential``, nested ones too) are simulated layer by layer with
    spikes kept as bits (:mod:`.layerwise`), ``chunk`` steps at a time (default
    ``layerwise.DEFAULT_CHUNK``): memory independent of T, each layer computed once (twice when it
    feeds a training-mode batch norm). Other models are run whole: ``chunk=None`` simulates all
    T steps at once (memory grows with T); an int simulates that many steps at a time, with one
    extra partial sweep of the model per training-mode batch norm. ``layerwise=False`` forces the
    whole-model path on sequential models too (for comparison).
    """
    check_sequence(x_seq, who="representation_forward", min_rank=3)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise TypeError(f"chunk must be a positive int or None, got {chunk!r}")
    eng = _Engine(model, chunk, layerwise)
    if not eng.neurons:
        raise SnnplugError("the model has no DSR neurons: prepare it with snnplug.apply(model, "
                           "neuron='dsr-if', T=...) or DSRStrategy.prepare(model)")
    bad = unsupported_modules(model)
    if bad:
        raise UnsupportedModuleError(
            "the T-independent DSR backward needs time-linear layers between neurons; found "
            + ", ".join(bad) + ". Use DSRStrategy(backward='per-step') for this model")
    T = x_seq.shape[0]
    wrong = sorted({n.T for n in eng.neurons if n.T != T})
    if wrong:
        raise TimeStepError(f"the input has {T} steps but the model's DSR neurons were built for "
                            f"T={wrong}; feed that many steps or rebuild them with T={T}")
    with eng.patched():
        readout = eng.simulate(x_seq)
        ann = eng.replay(x_seq)
    for n in eng.neurons:  # the records stay referenced by the graph only
        n._record = None
    return ann + (readout.to(ann.dtype) - ann).detach()
