"""Input encoders: static batch ``[B, ...]`` -> time-major sequence ``[T, B, ...]``."""

from __future__ import annotations

import torch

from snnplug.checks import as_steps
from snnplug.errors import ShapeError, TimeStepError


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Direct (constant-current) input: the same frame at every step, ``x_t = x``.

    Returns an expanded view (no copy); call ``.contiguous()`` if a kernel needs it.
    """
    T = as_steps("T", T)
    if x.dim() < 2:
        raise ShapeError(f"direct encoding expects a batch [B, ...], got shape {tuple(x.shape)}")
    return x.unsqueeze(0).expand(T, *x.shape)


def poisson(x: torch.Tensor, T: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Signed Poisson (Bernoulli-rate) spikes drawn fresh each step (Kim & Panda, BNTT):

    ``s_t = sign(x) * 1[u_t <= |x|]`` with ``u_t ~ U(0, 1)``; ``E[s_t] = clamp(x, -1, 1)``.
    (The BNTT code draws ``U(0, 2)`` for inputs normalised to about [-2, 2]; pass ``x / 2`` and
    rescale if you need that variant.)
    """
    T = as_steps("T", T)
    u = torch.rand((T, *x.shape), device=x.device, dtype=x.dtype, generator=generator)
    return torch.sign(x).unsqueeze(0) * (u <= x.abs().unsqueeze(0)).to(x.dtype)


def frames_to_time_major(x: torch.Tensor, T: int) -> torch.Tensor:
    """Event frames from a loader ``[B, T, ...]`` -> ``[T, B, ...]``; ``T`` must match."""
    T = as_steps("T", T)
    if x.dim() < 3:
        raise ShapeError(f"frame batches must be [B, T, ...], got shape {tuple(x.shape)}")
    if x.shape[1] != T:
        raise TimeStepError(
            f"the dataset yields {x.shape[1]} frames per sample but T={T}; build the dataset with "
            f"frames_number={T} or run with T={x.shape[1]}"
        )
    return x.transpose(0, 1).float()
