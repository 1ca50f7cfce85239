"""BNTT's input encoding: signed Poisson (Bernoulli-rate) spikes drawn fresh every step.

Kim & Panda (2021, Algorithm 2) feed ``PoissonGenerator(X)`` of the *normalised* image each step;
the authors' code draws ``s_t = sign(x)·1[U(0, 2) ≤ |x|]`` (``rescale_fac = 2``), so a pixel
fires with probability ``clamp(|x|/2, 0, 1)`` and the sign of its normalised value:
``E[s_t] = sign(x)·min(|x|/2, 1)``. ``snnplug.data.encoders.poisson`` is the ``scale = 1``
case; this module keeps the authors' scale as a parameter.
"""

from __future__ import annotations

import torch

from snnplug.checks import as_float, as_steps
from snnplug.errors import ShapeError


def signed_poisson(x: torch.Tensor, T: int, scale: float = 2.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``[B, ...] -> [T, B, ...]`` spikes in {−1, 0, 1}: ``s_t = sign(x)·1[scale·U(0,1) ≤ |x|]``."""
    T = as_steps("T", T)
    scale = as_float("scale", scale, positive=True)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ShapeError(f"signed_poisson expects a batch [B, ...], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"signed_poisson expects a floating-point tensor, got {x.dtype}")
    u = torch.rand((T, *x.shape), device=x.device, dtype=x.dtype, generator=generator)
    return torch.sign(x).unsqueeze(0) * (u.mul_(scale) <= x.abs().unsqueeze(0)).to(x.dtype)
