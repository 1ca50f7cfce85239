"""Callbacks: what a benchmark or application adds to :func:`snnplug.engine.train`.

A callback is any object with some of these methods (all optional), called with the live
:class:`TrainState`::

    on_train_start(state)   before the first step (after a resume: at the restored position)
    on_step(state)          after every optimizer step (state.loss: that step's loss)
    on_epoch(state)         after an epoch and its evaluation (state.history[-1])
    on_train_end(state)     after the last step, unless training raised

Setting ``state.stop = True`` ends training after the current step (like ``max_steps``: the
position is checkpointed, the epoch's evaluation is skipped). Callbacks put their results in
``state.metrics`` (returned as ``TrainResult.metrics``). Time spent inside callbacks and
evaluation is not counted in ``state.train_seconds`` / ``state.train_cpu_seconds``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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
    """Allocator peak of the training steps, in bytes, in ``state.metrics["peak_memory_bytes"]``
    (CUDA: ``max_memory_allocated`` above what was allocated at the start; on CPU torch keeps
    no allocator statistics, so the value is ``None``)."""

    def __init__(self) -> None:
        self._base = 0

    def _device(self, state: TrainState) -> torch.device:
        return torch.device(state.cfg.device)

    def on_train_start(self, state: TrainState) -> None:
        dev = self._device(state)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            self._base = torch.cuda.memory_allocated(dev)

    def on_train_end(self, state: TrainState) -> None:
        dev = self._device(state)
        peak = None
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            peak = int(torch.cuda.max_memory_allocated(dev) - self._base)
        state.metrics["peak_memory_bytes"] = peak


class LogEpochs:
    """Print one line per epoch (loss, train accuracy, test accuracy, seconds) to ``print_fn``."""

    def __init__(self, print_fn: Callable[[str], Any] = print) -> None:
        self.print_fn = print_fn

    def on_epoch(self, state: TrainState) -> None:
        h = state.history[-1]
        accs = ", ".join(f"T={t}: {a:.4f}" for t, a in h["test_acc"].items())
        self.print_fn(f"{state.strategy.name} epoch {h['epoch']}/{state.cfg.epochs}: loss {h['train_loss']:.4f}, "
                      f"train acc {h['train_acc']:.4f}" + (f", test acc {accs}" if accs else "")
                      + f", {h['train_seconds']:.1f} s")
