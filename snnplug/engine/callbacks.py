"""Callbacks: what a benchmark or application adds to :func:`snnplug.engine.train`.

A callback is any object with some of these methods (all optional), called with the live
:class:`TrainState`::

    on_train_start(state)   before the first step (after a resume: at the restored position)
    on_step(state)          after every optimizer step (state.loss: that step's loss)
    on_epoch(state)         after an epoch and its evaluation (state.history[-1])
    on_train_end(state)     after the last step, unless training raised
    on_train_abort(state)   when training raised (then the exception propagates): release
                            what on_train_start acquired

Setting ``state.stop = True`` ends training after the current step (like ``max_steps``: the
position is checkpointed, the epoch's evaluation is skipped). Callbacks put their results in
``state.metrics`` (returned as ``TrainResult.metrics``). Time spent inside callbacks and
evaluation is not counted in ``state.train_seconds`` / ``state.train_cpu_seconds``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class TrainState:
    """Where training stands; handed to every callback."""

    strategy: Any
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    cfg: Any  # the TrainConfig
    epoch: int = 0  # 0-based epoch being trained
    step_in_epoch: int = 0  # optimizer steps done in this epoch
    global_step: int = 0
    loss: float = math.nan  # the last step's loss
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0  # wall time of the training steps only
    train_cpu_seconds: float = 0.0  # process CPU time of the training steps only
    stop: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)


def call(callbacks: Iterable[Any], hook: str, state: TrainState) -> None:
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(state)


class EvalEvery:
    """Every ``every`` steps call ``evaluate(state) -> accuracy``; record ``(step, train wall s,
    train CPU s, accuracy)`` in ``state.metrics[key]``; with ``target``, stop at the first
    evaluation reaching it (its point is ``state.metrics[key + "_hit"]``). Time to accuracy."""

    def __init__(self, every: int, evaluate: Callable[[TrainState], float], *, target: float | None = None,
                 key: str = "evals") -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise TypeError(f"every must be a positive int number of steps, got {every!r}")
        self.every, self.evaluate, self.target, self.key = every, evaluate, target, key

    def on_step(self, state: TrainState) -> None:
        if state.global_step % self.every:
            return
        acc = float(self.evaluate(state))
        point = (state.global_step, state.train_seconds, state.train_cpu_seconds, acc)
        state.metrics.setdefault(self.key, []).append(point)
        if self.target is not None and acc >= self.target and f"{self.key}_hit" not in state.metrics:
            state.metrics[f"{self.key}_hit"] = point
            state.stop = True


class PeakMemory:
    """Allocator peak of the training steps, in bytes, in ``state.metrics["peak_memory_bytes"]``:
    the most bytes the steps had allocated at once beyond what was allocated when training
    started (the model and data; optimizer state created by the first step counts).

    * CUDA: ``torch.cuda.max_memory_allocated`` over the whole run, minus the start.
    * CPU: torch keeps no allocator statistics, so the first ``cpu_steps`` steps (default 3)
      run under ``torch.profiler`` with ``profile_memory=True``; every allocation and free of
      torch's CPU allocator is an event, and the peak of their running sum is the figure (the
      method used by ``benchmarks/dsr_zoo.py``). Steps are alike, so a few give the peak of all;
      the profiler slows only those steps. ``state.metrics["peak_memory_steps"]`` says how
      many steps were measured (None: all).
    """

    def __init__(self, cpu_steps: int = 3) -> None:
        if isinstance(cpu_steps, bool) or not isinstance(cpu_steps, int) or cpu_steps < 1:
            raise TypeError(f"cpu_steps must be a positive int, got {cpu_steps!r}")
        self.cpu_steps = cpu_steps
        self._base = 0
        self._prof: Any = None
        self._steps = 0

    def _device(self, state: TrainState) -> torch.device:
        return torch.device(state.cfg.device)

    def on_train_start(self, state: TrainState) -> None:
        dev = self._device(state)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            self._base = torch.cuda.memory_allocated(dev)
        elif dev.type == "cpu":
            from torch.profiler import ProfilerActivity, profile

            self._steps = 0
            self._prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            with _quiet_stderr():
                self._prof.start()

    def on_step(self, state: TrainState) -> None:
        if self._prof is None:
            return
        self._steps += 1
        if self._steps >= self.cpu_steps:
            self._finish_cpu(state)

    def _finish_cpu(self, state: TrainState) -> None:
        prof, self._prof = self._prof, None
        with _quiet_stderr():
            prof.stop()
            state.metrics["peak_memory_bytes"] = allocator_peak(prof)
        state.metrics["peak_memory_steps"] = self._steps

    def on_train_abort(self, state: TrainState) -> None:
        """Training raised: stop the profiler (no figure is recorded)."""
        prof, self._prof = self._prof, None
        if prof is not None:
            with _quiet_stderr():
                prof.stop()

    def on_train_end(self, state: TrainState) -> None:
        dev = self._device(state)
        if self._prof is not None:  # fewer steps than cpu_steps
            self._finish_cpu(state)
        elif dev.type == "cuda":
            torch.cuda.synchronize(dev)
            state.metrics["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(dev) - self._base)
            state.metrics["peak_memory_steps"] = None
        else:
            state.metrics.setdefault("peak_memory_bytes", None)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side (Kineto) writes
    ``profiler_start``/``profiler_stop`` lines and, without a GPU, a ``gpuGetDeviceCount`` error
    there whatever ``KINETO_LOG_LEVEL`` says. Only the profiler's own calls run inside."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def allocator_peak(prof: Any) -> int:
    """Peak of the running sum of a finished ``torch.profiler`` run's memory events (bytes
    allocated minus freed, in time order), at least 0."""
    import itertools

    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    return max(0, max(itertools.accumulate(b for _, b in events), default=0))


class LogEpochs:
    """Print one line per epoch (loss, train and test accuracy in percent, training seconds so
    far) to ``print_fn``, e.g. ``dsr epoch 2/3: loss 0.4120, train acc 91.2%, test acc T=20: 95.3%, 2.1 s``."""

    def __init__(self, print_fn: Callable[[str], Any] = print) -> None:
        self.print_fn = print_fn

    def on_epoch(self, state: TrainState) -> None:
        h = state.history[-1]
        accs = ", ".join(f"T={t}: {100 * a:.1f}%" for t, a in h["test_acc"].items())
        self.print_fn(f"{state.strategy.name} epoch {h['epoch']}/{state.cfg.epochs}: loss {h['train_loss']:.4f}, "
                      f"train acc {100 * h['train_acc']:.1f}%" + (f", test acc {accs}" if accs else "")
                      + f", {h['train_seconds']:.1f} s")
