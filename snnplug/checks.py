"""Input validation shared by neurons, normalizers and strategies.

Errors name the problem and the fix; nothing is silently reshaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from snnplug.errors import ShapeError, TimeStepError, UnsupportedModuleError


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


def check_length(who: str, x: Any, T: int | None, *, strict: bool, t0: int = 0) -> None:
    """Refuse a first sequence of fewer (or more) steps than a module's declared ``T``.

    A batch-major ``[B, T, ...]`` tensor with ``B < T`` looks like a short time-major sequence;
    modules built for ``T`` steps therefore refuse a sequence of another length unless relaxed
    with :func:`any_length` (early exit, anytime inference). ``B == T`` cannot be told apart
    from the shape alone: feed time-major ``[T, B, ...]`` tensors.
    """
    if T is None or not strict or t0 != 0:
        return
    steps = x.shape[0]
    if steps != T:
        raise TimeStepError(
            f"{who} was built for T={T} but got a sequence of {steps} steps (shape {tuple(x.shape)}); "
            f"if this is a batch-major [B, T, ...] tensor, make it time-major with x.transpose(0, 1); to "
            f"run {steps} steps on purpose wrap the call in `with snnplug.checks.any_length(model):`"
        )


@contextmanager
def any_length(model: Any) -> Iterator[None]:
    """Let every module of ``model`` with a ``strict_T`` flag run sequences of any length."""
    mods = [m for m in model.modules() if hasattr(m, "strict_T")]
    old = [m.strict_T for m in mods]
    for m in mods:
        m.strict_T = False
    try:
        yield
    finally:
        for m, s in zip(mods, old, strict=True):
            m.strict_T = s


def _lazy_modules(model: Any) -> list[str]:
    from torch.nn.parameter import UninitializedParameter

    return sorted({f"{name or 'the model'} ({type(m).__name__})" for name, m in model.named_modules()
                   for p in m.parameters(recurse=False) if isinstance(p, UninitializedParameter)})


def check_runnable(model: Any, who: str) -> None:
    """Refuse a model that cannot compute: uninitialised lazy modules or meta-device parameters."""
    lazy = _lazy_modules(model)
    if lazy:
        raise UnsupportedModuleError(
            f"{who}: the model has uninitialised lazy modules ({', '.join(lazy[:4])}); run one forward pass "
            f"on a sample batch first so their shapes are known")
    meta = [n for n, p in model.named_parameters() if p.is_meta] + [n for n, b in model.named_buffers() if b.is_meta]
    if meta:
        raise UnsupportedModuleError(
            f"{who}: the model's {', '.join(meta[:3])}{' ...' if len(meta) > 3 else ''} are on the meta device "
            f"(shapes without data); materialise it first, e.g. model.to_empty(device='cpu') and "
            f"model.load_state_dict(weights)")


def copy_model(model: Any, who: str) -> Any:
    """``copy.deepcopy(model)`` with clear errors for lazy modules and members that cannot be copied."""
    import copy

    lazy = _lazy_modules(model)
    if lazy:
        raise UnsupportedModuleError(
            f"{who} copies the model, but it has uninitialised lazy modules ({', '.join(lazy[:4])}); run "
            f"one forward pass on a sample batch first so their shapes are known")
    try:
        return copy.deepcopy(model)
    except (TypeError, ValueError, RuntimeError, copy.Error) as exc:
        culprit = "a member"
        for mname, m in model.named_modules():
            for attr, value in vars(m).items():
                if attr.startswith("_"):
                    continue
                try:
                    copy.deepcopy(value)
                except Exception:
                    culprit = f"{mname + '.' if mname else ''}{attr} ({type(value).__name__})"
                    break
            else:
                continue
            break
        raise UnsupportedModuleError(
            f"{who} copies the model (copy.deepcopy) but {culprit} cannot be copied ({exc}); remove that "
            f"attribute from the model, or pass inplace=True where supported") from exc
