"""Layer-by-layer streamed simulation of a sequential DSR network, memory independent of ``T``.

The simulation phase of :mod:`.representation` for models that are a chain of modules
(``nn.Sequential``, nested ones flattened). The chain is cut after every DSR neuron into
segments ``[time-local ops ..., neuron]``; each segment runs over the whole sequence, ``chunk``
steps at a time, before the next starts:

* the segment's input is the previous neuron's spike train, kept as bits over time
  (:class:`.spike_bits.SpikeBits`, ``ceil(T/8)`` bytes per neuron), or the model input;
* a batch norm in training mode needs its statistics over all ``T*B`` before step 1 can be
  normalised, so its segment prefix runs once to measure them (:class:`.bn_stats.BNStats`) and once
  more to normalise: the layers feeding a batch norm are computed twice, every other layer once
  (the whole-model chunked sweeps of :mod:`.representation` recompute every earlier layer once
  per batch norm);
* an input that is constant in time (direct encoding: an ``expand``-ed view, or ``T == 1``) passes
  the ops before the first neuron once, on one step.

Only float tensors of ``chunk`` steps exist at any time, plus one bit-packed spike train per
layer (1/32 of its float size), so peak memory hardly grows with ``T``. Spikes, records and
batch-norm statistics equal those of the whole-sequence simulation up to float rounding of the
statistics (merge order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from snnplug.errors import SnnplugError

from snnplug_dsr.bn_stats import BNStats
from snnplug_dsr.neuron import DSRNode
from snnplug_dsr.spike_bits import SpikeBits

DEFAULT_CHUNK = 4
"""Steps per chunk when none is given: large enough for efficient layers, small enough for memory."""


def _is_plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


def chain_of(model: nn.Module, stats_bns: Sequence[nn.Module]) -> list[nn.Module] | None:
    """The model as a flat list of modules run one after the other, or None when it is not one.

    Plain ``nn.Sequential`` containers are flattened. Any other module is one op applied to each
    chunk; it may not contain a DSR neuron or a batch norm that needs statistics (those must be
    visible in the chain), else the model is not a chain.
    """
    if not _is_plain_sequential(model):
        return None
    ops: list[nn.Module] = []
    special = set(map(id, stats_bns))

    def walk(seq: nn.Module) -> bool:
        for m in seq.children():
            if _is_plain_sequential(m):
                if not walk(m):
                    return False
            elif isinstance(m, DSRNode) or id(m) in special:
                ops.append(m)
            elif any(isinstance(s, DSRNode) or id(s) in special for s in m.modules()):
                return False
            else:
                ops.append(m)
        return True

    return ops if walk(model) else None


class _Source:
    """Where a segment's input comes from: the model input (maybe constant in time) or bits."""

    def __init__(self, x_seq: torch.Tensor | None = None, bits: SpikeBits | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.x_seq, self.bits, self.dtype = x_seq, bits, dtype
        self.constant = x_seq is not None and (x_seq.shape[0] == 1 or x_seq.stride(0) == 0)

    def read(self, start: int, n: int) -> torch.Tensor:
        if self.bits is not None:
            assert self.dtype is not None
            return self.bits.read(start, n, self.dtype)
        assert self.x_seq is not None
        return self.x_seq[start:start + n]


def _run(ops: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for op in ops:
        x = op(x)
    return x


def simulate_chain(chain: Sequence[nn.Module], x_seq: torch.Tensor, chunk: int,
                   stats: Mapping[nn.Module, BNStats]) -> torch.Tensor:
    """Simulate ``chain`` on ``x_seq [T, B, ...]`` (no autograd); returns the time-mean output.

    ``stats`` maps each batch norm that needs sequence statistics to its accumulator; the batch
    norms themselves, when called, must normalise with the finalised statistics (the caller
    patches them). DSR neurons must be in stream mode with fresh records.
    """
    T = x_seq.shape[0]
    src = _Source(x_seq=x_seq)
    pending: list[nn.Module] = []
    with torch.no_grad():
        for op in chain:
            if isinstance(op, DSRNode):
                src = _run_segment(src, pending, T, chunk, stats, neuron=op)
                pending = []
            else:
                pending.append(op)
        total = _run_segment(src, pending, T, chunk, stats, neuron=None)
    return total / T


def _measure(src: _Source, ops: Sequence[nn.Module], T: int, chunk: int,
             stats: Mapping[nn.Module, BNStats]) -> None:
    """Measure the statistics of every batch norm among ``ops`` (in order)."""
    for k, op in enumerate(ops):
        if op not in stats:
            continue
        st = stats[op]
        if src.constant:  # one step's statistics are the sequence's
            x = _run(ops[:k], src.read(0, 1))
            st.accumulate(st.flat(x))
            st.stand_for(1, T)
        else:
            for s in range(0, T, chunk):
                x = _run(ops[:k], src.read(s, min(chunk, T - s)))
                st.accumulate(st.flat(x))
        st.finalize(x.dtype)


def _run_segment(src: _Source, ops: Sequence[nn.Module], T: int, chunk: int,
                 stats: Mapping[nn.Module, BNStats], neuron: DSRNode | None):
    """Run ``ops`` then ``neuron`` over the sequence; returns the neuron's spikes as a source, or
    (``neuron is None``: the chain's tail) the sum over time of the output."""
    _measure(src, ops, T, chunk, stats)
    const = _run(ops, src.read(0, 1)) if src.constant else None
    out_bits: SpikeBits | None = None
    out_dtype: torch.dtype | None = None
    total: torch.Tensor | None = None
    for s in range(0, T, chunk):
        n = min(chunk, T - s)
        x = const.expand(n, *const.shape[1:]) if const is not None else _run(ops, src.read(s, n))
        if neuron is None:
            part = x.sum(0)
            total = part if total is None else total + part
            continue
        y = neuron(x)
        if out_bits is None:
            out_dtype = y.dtype
            sim = y.dtype if y.dtype in (torch.float32, torch.float64) else torch.float32
            out_bits = SpikeBits(T, y.shape[1:], y.device, neuron.spike_amplitude(sim))
        out_bits.write(s, y)
    if neuron is None:
        if total is None:
            raise SnnplugError("the model produced no output (internal)")
        return total
    return _Source(bits=out_bits, dtype=out_dtype)
