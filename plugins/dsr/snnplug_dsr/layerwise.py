"""Layer-wise streamed simulation of a DSR network graph, memory independent of ``T``.

The simulation phase of :mod:`.representation` on a traced model (:mod:`.graph`). Every DSR
neuron node is a *source*: its spike train is kept over time as bits
(:class:`.spike_bits.SpikeBits`, ``ceil(T/8)`` bytes per neuron). The neurons are simulated one
after the other in graph order; each one's *segment* (the operations between it and the sources
it reads: convolutions, batch norm, residual adds, pooling, ...) runs over the whole sequence,
``chunk`` steps at a time, before the next neuron starts. The model's output is the last
segment; its time mean is the readout.

* A training-mode batch norm needs its statistics over all ``T*B`` before step 1 can be
  normalised, so the part of the segment feeding it runs once to measure them
  (:class:`.bn_stats.BNStats`). Its input is kept for the normalising pass while the kept
  inputs of the segment fit in ``cache_bytes`` (``representation_forward`` passes the size of
  the model's parameters, which the gradients take anyway, so memory stays flat in T); beyond
  that the layers feeding the batch norm are computed again. Every other layer runs once per
  segment that reads it (a residual branch's adds are cheap and recomputed rather than stored).
* Operations that depend only on an input constant in time (direct encoding: an ``expand``-ed
  view, or ``T == 1``) are computed once, on one step.
* What the representation pass needs from non-linear operations is recorded once, during the
  first segment that computes them: argmax counts of max pooling (:mod:`.maxpool`), the time
  sum of products, the neurons' records.

Only float tensors of ``chunk`` steps exist at any time, plus one bit-packed spike train per
neuron layer and the T-independent records, so peak memory hardly grows with ``T``. Spikes,
records and batch-norm statistics equal those of simulating all T steps at once
(:meth:`Executor.simulate_whole`) up to float rounding of the statistics (merge order).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import fx

from snnplug.errors import SnnplugError

from snnplug_dsr.bn_stats import BNStats
from snnplug_dsr.graph import Graph
from snnplug_dsr.maxpool import MaxPoolRecord, MaxPoolReplay, PoolGeometry
from snnplug_dsr.neuron import DSRNode, Record
from snnplug_dsr.readout_neuron import ReadoutRecord, ReadoutReplay
from snnplug_dsr.spike_bits import SpikeBits

DEFAULT_CHUNK = 4
"""Steps per chunk when none is given: large enough for efficient layers, small enough for memory."""

OUT_OF_PLACE = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul}


def _float(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


class Executor:
    """One streamed simulation plus one representation pass of a traced DSR model."""

    def __init__(self, graph: Graph, x_seq: torch.Tensor, chunk: int,
                 cache_bytes: int = 0) -> None:
        self.g = graph
        self.cache_bytes = cache_bytes
        self.x_seq = x_seq
        self.T = x_seq.shape[0]
        self.chunk = max(1, min(chunk, self.T))
        self.records: dict[fx.Node, Record] = {}
        self.stats: dict[fx.Node, BNStats] = {}
        self.pools: dict[fx.Node, MaxPoolRecord] = {}
        self.readouts: dict[fx.Node, ReadoutRecord] = {}  # the user's neurons kept at the readout
        self.sums: dict[fx.Node, torch.Tensor] = {}  # products: sum over time of the output
        self.recorded: set[fx.Node] = set()
        for n in graph.nodes:
            k = graph.kind[n]
            if k == "neuron":
                self.records[n] = self._neuron(n).new_record(self.T)
            elif k == "bn":
                self.stats[n] = BNStats(graph.modules[n])
            elif k == "maxpool":
                self.pools[n] = MaxPoolRecord(PoolGeometry.of(graph.modules[n]), self.T)
            elif k == "readout":
                self.readouts[n] = ReadoutRecord(self.T)

    def _neuron(self, n: fx.Node) -> DSRNode:
        m = self.g.modules[n]
        assert isinstance(m, DSRNode)
        return m

    # -- one operation ----------------------------------------------------------------------------
    def _op(self, n: fx.Node, args: tuple, kwargs: dict, *, record: bool, replay: bool = False) -> Any:
        """Compute node ``n`` on argument values (``[n_steps, B, ...]`` tensors)."""
        k = self.g.kind[n]
        if n.op == "get_attr":
            v: Any = self.g.model
            for part in str(n.target).split("."):
                v = getattr(v, part)
            return v
        if n.op == "call_module":
            m = self.g.modules[n]
            x = args[0]
            if k == "neuron":
                assert isinstance(m, DSRNode)
                return m.replay(x, self.records[n]) if replay else m.stream(x, self.records[n])
            if k == "bn":
                return self._bn(n, x, replay)
            if k == "readout":  # only in the output segment: simulated once, chunk after chunk
                return ReadoutReplay.apply(x, self.readouts[n], m) if replay else self.readouts[n].run(m, x)
            if k == "maxpool":
                if replay:
                    return MaxPoolReplay.apply(x, self.pools[n])
                if record:
                    return self.pools[n].add(x)
                y = self.pools[n].geo.pool(x.flatten(0, 1))
                return y.view(*x.shape[:3], *y.shape[2:])
            return m(*args, **kwargs)
        if n.op == "call_function":
            f = OUT_OF_PLACE.get(n.target, n.target)
            y = f(*args, **kwargs)
        elif n.op == "call_method":
            y = getattr(args[0], str(n.target))(*args[1:], **kwargs)
        else:
            raise SnnplugError(f"node {n.name} ({n.op}) cannot be computed (internal)")
        if k == "product":
            if replay:  # value: the measured time mean; gradient: at the time-mean inputs
                mean = (self.sums[n] / self.T).to(y.dtype).unsqueeze(0)
                return y + (mean - y).detach()
            if record:
                s = y.sum(0)
                self.sums[n] = s if n not in self.sums else self.sums[n] + s
        return y

    def _bn(self, n: fx.Node, x: torch.Tensor, replay: bool) -> torch.Tensor:
        st, bn = self.stats[n], self.g.modules[n]
        x2 = st.flat(x)
        if st.mean is None or st.var is None:
            raise SnnplugError(f"batch norm {n.target} used before its statistics were measured (internal)")
        if replay:
            from snnplug_dsr.representation import bn_replay

            y = bn_replay(x2, st, bn)
        else:
            y = Fn.batch_norm(x2, st.mean.to(x2.dtype), st.var.to(x2.dtype), bn.weight, bn.bias,
                              False, 0.0, bn.eps)
        return y.view(*x.shape[:2], *y.shape[1:]) if st.multi_step else y

    def _measure_bn(self, n: fx.Node, x: torch.Tensor) -> None:
        st = self.stats[n]
        st.accumulate(st.flat(x))

    # -- the reference: all T steps at once --------------------------------------------------------
    def simulate_whole(self) -> torch.Tensor:
        """Every node on all ``T`` steps at once, in graph order (no bits, no chunks); returns the
        time mean of the output. Memory grows with T; used as the reference."""
        vals: dict[fx.Node, Any] = {}
        last = self._last_use()
        with torch.no_grad():
            for i, n in enumerate(self.g.nodes):
                k = self.g.kind[n]
                if n.op == "placeholder":
                    vals[n] = self.x_seq if k == "input" else n.args[0] if n.args else None
                    continue
                args = fx.node.map_arg(n.args, lambda a: vals[a])
                kwargs = fx.node.map_arg(n.kwargs, lambda a: vals[a])
                if n.op == "output":
                    out = args[0]
                    break
                if k == "bn":
                    self._measure_bn(n, args[0])
                    self.stats[n].finalize(_float(args[0].dtype))
                vals[n] = self._op(n, args, kwargs, record=True)
                for d in n.all_input_nodes:
                    if last.get(d) == i:
                        vals.pop(d, None)
        return self._readout(out) / self.T

    def _last_use(self) -> dict[fx.Node, int]:
        last: dict[fx.Node, int] = {}
        for i, n in enumerate(self.g.nodes):
            for d in n.all_input_nodes:
                last[d] = i
        return last

    @staticmethod
    def _readout(out: Any) -> torch.Tensor:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            raise SnnplugError("the model must return a time-major tensor [T, B, ...]")
        return out.sum(0)

    # -- layer by layer ---------------------------------------------------------------------------
    def simulate_layerwise(self) -> torch.Tensor:
        """The layer-wise streamed simulation (module docstring); returns the output's time mean."""
        g = self.g
        const = self._time_constant_nodes()
        # max pooling of a neuron's spikes gives spikes: stored as bits too, computed once
        self.spike_pools = {n: n.args[0] for n in g.nodes if g.kind[n] == "maxpool" and n not in const
                            and isinstance(n.args[0], fx.Node) and g.kind[n.args[0]] == "neuron"}
        self.cval: dict[fx.Node, Any] = {}
        self.bits: dict[fx.Node, SpikeBits] = {}
        self.bit_dtype: dict[fx.Node, torch.dtype] = {}
        with torch.no_grad():
            self._constants([n for n in g.nodes if n in const])
            targets = [n for n in g.nodes if g.kind[n] == "neuron" or n in self.spike_pools] + [g.output]
            total = None
            for tgt in targets:
                seg = self._segment(tgt, const)
                self.cache: dict[fx.Node, list[Any]] = {}
                self.cache_left = self.cache_bytes
                for b in seg:
                    if g.kind[b] == "bn" and self.stats[b].mean is None:
                        self._bn_statistics(b, seg)
                part_sum = self._stream_target(tgt, seg)
                if part_sum is not None:
                    total = part_sum if total is None else total + part_sum
                self.recorded.update(seg)
                self.recorded.add(tgt)
                self.cache = {}
                for n in [n for n in self.cval if all(u in self.recorded or u in const for u in n.users)]:
                    del self.cval[n]  # time-constant values nothing left reads
        if total is None:
            raise SnnplugError("the model produced no output (internal)")
        return total / self.T

    def _time_constant_nodes(self) -> set[fx.Node]:
        """Nodes whose value is the same at every step (or has no time axis): computed once."""
        g = self.g
        constant_input = self.T == 1 or self.x_seq.stride(0) == 0
        const: set[fx.Node] = set()
        for n in g.nodes:
            k = g.kind[n]
            if k == "const" or (k == "input" and constant_input):
                const.add(n)
            elif k not in ("input", "neuron", "readout") and n.op != "output" and all(d in const for d in g.deps(n)):
                const.add(n)
        return const

    def _bn_statistics(self, b: fx.Node, seg: list[fx.Node]) -> None:
        """Sweep the layers feeding training-mode batch norm ``b`` over all steps to measure its
        sequence statistics; keep its input for the normalising pass while the cache budget lasts."""
        part = self._within(b, seg)
        src = b.args[0]
        keep = isinstance(src, fx.Node) and src in seg and src not in self.cache
        kept: list[Any] = []
        for s, c in self._chunks():
            vals = self._eval(part, s, c, record=True, keep=b)
            xb = self._arg(src, vals, s, c)
            self._measure_bn(b, xb)
            if keep and s == 0:
                need = xb.element_size() * xb.numel() * -(-self.T // c)
                keep = need <= self.cache_left
                self.cache_left -= need if keep else 0
            if keep:
                kept.append(xb)
        if keep:
            self.cache[src] = kept
        self.recorded.update(part)
        self.stats[b].finalize(_float(xb.dtype))

    def _stream_target(self, tgt: fx.Node, seg: list[fx.Node]) -> torch.Tensor | None:
        """Stream segment ``seg`` chunk by chunk into ``tgt``: a neuron or spike pool (its spikes
        stored as bits), or the output (returns the sum over time of the readout)."""
        total = None
        main = self._needed(tgt, seg, set(self.cache)) if self.cache else seg
        for i, (s, c) in enumerate(self._chunks()):
            vals = self._eval(main, s, c, record=True, keep=tgt,
                              cached={n: kept[i] for n, kept in self.cache.items()})
            x = self._arg(tgt.args[0], vals, s, c)
            if tgt.op == "output":
                part_sum = self._readout(x)
                total = part_sum if total is None else total + part_sum
            elif tgt in self.spike_pools:
                self._write(tgt, s, self._op(tgt, (x,), {}, record=tgt not in self.recorded))
            else:
                self._write(tgt, s, self._neuron(tgt).stream(x, self.records[tgt]))
        return total

    def _chunks(self) -> Iterable[tuple[int, int]]:
        for s in range(0, self.T, self.chunk):
            yield s, min(self.chunk, self.T - s)

    def _write(self, n: fx.Node, s: int, y: torch.Tensor) -> None:
        if n not in self.bits:
            self.bit_dtype[n] = y.dtype
            spiking = self._neuron(self.spike_pools.get(n, n))
            self.bits[n] = SpikeBits(self.T, y.shape[1:], y.device, spiking.spike_amplitude(_float(y.dtype)))
        self.bits[n].write(s, y)

    def _constants(self, nodes: list[fx.Node]) -> None:
        """Compute the time-constant nodes once, on one step; what they record stands for T steps."""
        T = self.T
        for n in nodes:
            k = self.g.kind[n]
            if n.op == "placeholder":
                self.cval[n] = self.x_seq[:1] if k == "input" else (n.args[0] if n.args else None)
                continue
            args = fx.node.map_arg(n.args, lambda a: self.cval[a])
            kwargs = fx.node.map_arg(n.kwargs, lambda a: self.cval[a])
            if k == "bn":
                self._measure_bn(n, args[0])
                self.stats[n].stand_for(1, T)
                self.stats[n].finalize(_float(args[0].dtype))
            y = self._op(n, args, kwargs, record=True)
            if k == "maxpool":  # one step recorded, standing for T identical ones
                pr = self.pools[n]
                assert pr.counts is not None and pr.sum_out is not None
                pr.counts.mul_(T)
                pr.sum_out.mul_(T)
                pr.steps = T
            elif k == "product":
                self.sums[n] = self.sums[n] * T
            self.cval[n] = y
            self.recorded.add(n)

    def _segment(self, tgt: fx.Node, const: set[fx.Node]) -> list[fx.Node]:
        """The nodes between ``tgt`` and its sources (neurons, the input, constants), in order."""
        g = self.g
        seen: set[fx.Node] = set()
        stack = list(g.deps(tgt))
        while stack:
            n = stack.pop()
            if n in seen or n in const or g.kind[n] in ("neuron", "input") or n in self.spike_pools:
                continue
            seen.add(n)
            stack.extend(g.deps(n))
        return [n for n in g.nodes if n in seen]

    def _within(self, b: fx.Node, seg: list[fx.Node]) -> list[fx.Node]:
        """The nodes of ``seg`` that ``b`` depends on (without ``b``)."""
        region, need = set(seg), set()
        stack = list(self.g.deps(b))
        while stack:
            n = stack.pop()
            if n in region and n not in need:
                need.add(n)
                stack.extend(self.g.deps(n))
        return [n for n in seg if n in need]

    def _arg(self, a: Any, vals: dict[fx.Node, Any], s: int, c: int) -> Any:
        """Value of argument ``a`` for steps ``s .. s+c-1`` in a chunk evaluation."""
        if not isinstance(a, fx.Node):
            return a
        if a in vals:
            return vals[a]
        if a in self.cval:
            v = self.cval[a]
            if isinstance(v, torch.Tensor) and self.g.kind[a] != "const":
                return v.expand(c, *v.shape[1:])
            return v
        k = self.g.kind[a]
        if k == "neuron" or a in self.spike_pools:
            return self.bits[a].read(s, c, self.bit_dtype[a])
        if k == "input":
            return self.x_seq[s:s + c]
        raise SnnplugError(f"node {a.name} read before it was computed (internal)")

    def _eval(self, nodes: list[fx.Node], s: int, c: int, *, record: bool, keep: fx.Node,
              cached: dict[fx.Node, Any] | None = None) -> dict[fx.Node, Any]:
        """Compute ``nodes`` for steps ``s .. s+c-1``; a value is dropped after its last use
        among ``nodes`` unless it is an input of ``keep`` (what the caller reads)."""
        vals: dict[fx.Node, Any] = dict(cached or {})
        last: dict[fx.Node, int] = {}
        for i, n in enumerate(nodes):
            for d in n.all_input_nodes:
                last[d] = i
        for d in keep.all_input_nodes:
            last[d] = len(nodes)
        for i, n in enumerate(nodes):
            args = fx.node.map_arg(n.args, lambda a: self._arg(a, vals, s, c))
            kwargs = fx.node.map_arg(n.kwargs, lambda a: self._arg(a, vals, s, c))
            vals[n] = self._op(n, args, kwargs, record=record and n not in self.recorded)
            del args, kwargs
            for d in n.all_input_nodes:
                if last.get(d) == i:
                    vals.pop(d, None)
        return vals

    def _needed(self, tgt: fx.Node, nodes: list[fx.Node], have: set[fx.Node]) -> list[fx.Node]:
        """The nodes of ``nodes`` that ``tgt`` needs when the values in ``have`` are known."""
        region, need = set(nodes), set()
        stack = list(self.g.deps(tgt))
        while stack:
            n = stack.pop()
            if n in region and n not in have and n not in need:
                need.add(n)
                stack.extend(self.g.deps(n))
        return [n for n in nodes if n in need]

    # -- the representation pass ------------------------------------------------------------------
    def replay(self) -> torch.Tensor:
        """The model once on the time-mean input ``[1, B, ...]`` with autograd; neurons, max
        pooling, products and batch norms return the simulation's values (see
        :mod:`.representation`). Returns ``[B, ...]``."""
        vals: dict[fx.Node, Any] = {}
        last = self._last_use()
        for i, n in enumerate(self.g.nodes):
            k = self.g.kind[n]
            if n.op == "placeholder":
                default = n.args[0] if n.args else None
                vals[n] = self.x_seq.mean(0, keepdim=True) if k == "input" else default
                continue
            args = fx.node.map_arg(n.args, lambda a: vals[a])
            kwargs = fx.node.map_arg(n.kwargs, lambda a: vals[a])
            if n.op == "output":
                out = args[0]
                if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] != 1:
                    raise SnnplugError("the model must return a time-major tensor [T, B, ...]")
                return out[0]
            vals[n] = self._op(n, args, kwargs, record=False, replay=True)
            for d in n.all_input_nodes:
                if last.get(d) == i:
                    vals.pop(d, None)
        raise SnnplugError("the model graph has no output (internal)")
