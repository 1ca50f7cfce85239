"""Side-by-side timing of two (or more) callables: warm-up, interleaved repeats, median and spread.

:func:`interleaved` calls every function ``warmup`` times untimed (first-call costs: allocator
growth, lazy initialisation, caches), then ``repeats`` rounds in which each function is timed once,
the order reversed every other round (A B, B A, ...) so a slow drift of the machine's load hits
all of them alike. The garbage collector is off while timing (as :mod:`timeit` does). Each
function gets :class:`Stats` over its rounds; :func:`paired_ratio` gives the ratio of two of them
per round (same round = same load), whose median is the speedup reported.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements (seconds, or a ratio)."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        v = sorted(values)
        if len(v) == 1:
            return cls(v[0], v[0], v[0], v[0], v[0], 1)
        q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
        return cls(statistics.median(v), q1, q3, v[0], v[-1], len(v))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def interleaved(fns: dict[str, Callable[[], Any]], *, repeats: int = 15, warmup: int = 3,
                sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds of every call of each function over ``repeats`` interleaved rounds (see module doc).
    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each clock reading."""
    sync = sync or (lambda: None)
    names = list(fns)
    for _ in range(max(0, warmup)):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(max(1, repeats)):
            for name in (names if r % 2 == 0 else names[::-1]):
                sync()
                t0 = time.perf_counter()
                fns[name]()
                sync()
                times[name].append(time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    return times


def paired_ratio(num: list[float], den: list[float]) -> Stats:
    """Stats of ``num[i] / den[i]`` over the rounds (e.g. the speedup of ``den`` over ``num``)."""
    return Stats.of([a / b for a, b in zip(num, den, strict=True) if b > 0])
