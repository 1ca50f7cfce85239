"""Input validation shared by neurons, normalizers and strategies.

Errors name the problem and the fix; nothing is silently reshaped.
"""

from __future__ import annotations

import math
from typing import Any

from snnplug.errors import ShapeError, TimeStepError


def as_float(name: str, value: Any, *, positive: bool = False, lo: float | None = None,
             hi: float | None = None) -> float:
    """``value`` as a Python float; ints are accepted and converted, tensors/strings rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a Python float, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v}")
    return v


#: the most time steps snnplug accepts: checked before anything is allocated (T=2**31 would ask
#: for terabytes); published SNN methods use T <= a few thousand
MAX_STEPS = 100_000


def as_steps(name: str, value: Any) -> int:
    """A positive integer number of time steps, at most :data:`MAX_STEPS`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int number of time steps, got {value!r}")
    if value > MAX_STEPS:
        raise TimeStepError(f"{name}={value} time steps is more than snnplug accepts ({MAX_STEPS}); "
                            f"SNN methods use T <= a few thousand: pass a smaller {name}")
    return int(value)


def check_sequence(x: Any, *, who: str, min_rank: int = 3, T: int | None = None,
                   allow_shorter: bool = False, floating: bool = True) -> None:
    """Check that ``x`` is a time-major ``[T, B, ...]`` tensor.

    ``min_rank`` is the smallest rank accepted (3 for ``[T, B, features]``). When ``T`` is given
    the leading dimension must equal it (or be at most it with ``allow_shorter``).
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor [T, B, ...], got {type(x).__name__}")
    if x.dim() < min_rank:
        raise ShapeError(
            f"{who} expects a time-major tensor [T, B, ...] of rank >= {min_rank}, got shape "
            f"{tuple(x.shape)}; a single-step input [B, ...] must be given a time axis, e.g. "
            f"x.unsqueeze(0) or x.unsqueeze(0).repeat(T, 1, ...)"
        )
    if floating and not x.is_floating_point():
        raise TypeError(f"{who} expects a floating-point tensor, got {x.dtype}; call x.float()")
    if T is not None:
        steps = x.shape[0]
        if steps > T or (steps < T and not allow_shorter):
            raise TimeStepError(
                f"{who} was built for T={T} but got a sequence of {steps} steps (shape "
                f"{tuple(x.shape)}); pass T={steps} when building it or feed {T} steps"
            )
