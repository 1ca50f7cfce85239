"""The noise terms of Jiang & Zhang's method, as pure functions.

* ``N_noise`` (eq. 6): drawn fresh for every neuron, sample and step, in the range
  ``[low, high]`` (paper: ``[0, 1]``). Gaussian: mean ``(low+high)/2``, standard deviation
  ``std`` (default ``(high-low)/6``, so the range is +-3 sigma) clipped to the range; or uniform
  on ``[low, high)``.
* Stage 3 (eqs. 7-10): ``N_noise = N(lambda V(t-1)) + N'_noise`` with

      A = lambda V(t-1)                          (8)
      A^ = (A - mu) / sigma                      (9)   mu, sigma over each sample's layer
      N(A) = A^ / (alpha * max|A^|) + beta       (10)  mean beta, range [beta-1/alpha, beta+1/alpha]

  and the residual ``N' = (m - beta) + s (xi - m)``, ``xi ~ N_noise``, ``m`` its mean,
  ``s = 1 - 1/(alpha h)``, ``h = (high-low)/2``. The sum keeps ``N_noise``'s mean ``m`` and its
  range ``[m-h, m+h]``; ``alpha = 1/h`` (paper: 2) gives ``s = 0`` (no residual noise) and
  ``alpha -> inf`` gives ``N(A) = beta``, ``N' = xi - beta``: exactly the stage-2 noise.

Jiang, C. & Zhang, Y., "A noise based novel strategy for faster SNN training", eqs. (6)-(10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from snnplug.checks import as_float

KINDS = ("gaussian", "uniform")


@dataclass(frozen=True)
class NoiseSpec:
    """Distribution of ``N_noise``: ``kind`` on ``[low, high]`` (paper: Gaussian on [0, 1])."""

    kind: str = "gaussian"
    low: float = 0.0
    high: float = 1.0
    std: float | None = None  # Gaussian only; None -> (high - low) / 6

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"noise kind must be one of {KINDS}, got {self.kind!r}")
        lo = as_float("noise_low", self.low)
        hi = as_float("noise_high", self.high)
        if hi <= lo:
            raise ValueError(f"noise range must have noise_low < noise_high, got [{lo}, {hi}]")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        if self.std is not None:
            if self.kind != "gaussian":
                raise ValueError("noise_std applies to Gaussian noise only; drop it for uniform noise")
            object.__setattr__(self, "std", as_float("noise_std", self.std, positive=True))

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    @property
    def sigma(self) -> float:
        """Standard deviation of the Gaussian before clipping."""
        return self.std if self.std is not None else (self.high - self.low) / 6.0


def draw(spec: NoiseSpec, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh ``N_noise`` sample shaped like ``like`` (eq. 6)."""
    if spec.kind == "uniform":
        u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
        return spec.low + (spec.high - spec.low) * u
    z = torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return (spec.mean + spec.sigma * z).clamp_(spec.low, spec.high)


def _per_sample_dims(a: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(1, a.dim()))


def standardise_potential(a: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Eqs. 9-10 per sample (dim 0 is the batch): ``A^/(alpha max|A^|) + beta``.

    A sample whose potential is constant (sigma = 0) gets ``A^ = 0``, i.e. ``N(A) = beta``.
    ``alpha = inf`` gives ``beta`` everywhere.
    """
    if a.dim() < 2:
        raise ValueError(f"standardise_potential expects [B, ...], got shape {tuple(a.shape)}")
    dims = _per_sample_dims(a)
    mu = a.mean(dim=dims, keepdim=True)
    sigma = a.std(dim=dims, keepdim=True, unbiased=False)
    a_hat = torch.where(sigma > 0, (a - mu) / torch.where(sigma > 0, sigma, torch.ones_like(sigma)),
                        torch.zeros_like(a))
    peak = a_hat.abs().amax(dim=dims, keepdim=True)
    scale = torch.where(peak > 0, 1.0 / (alpha * torch.where(peak > 0, peak, torch.ones_like(peak))),
                        torch.zeros_like(peak))
    return a_hat * scale + beta


def residual_scale(spec: NoiseSpec, alpha: float) -> float:
    """``s = 1 - 1/(alpha h)``: how much of ``N_noise``'s spread is left for ``N'``."""
    if math.isinf(alpha):
        return 1.0
    s = 1.0 - 1.0 / (alpha * spec.half_width)
    if s < -1e-12:
        raise ValueError(
            f"alpha={alpha} makes N(lambda V) span [beta-1/alpha, beta+1/alpha], wider than the noise "
            f"range [{spec.low}, {spec.high}]; use alpha >= {1.0 / spec.half_width:g}"
        )
    return max(s, 0.0)


def residual_noise(xi: torch.Tensor, spec: NoiseSpec, alpha: float, beta: float) -> torch.Tensor:
    """``N' = (m - beta) + s (xi - m)`` for an ``N_noise`` sample ``xi`` (eq. 7)."""
    s = residual_scale(spec, alpha)
    return (spec.mean - beta) + s * (xi - spec.mean)


def stage3_noise(v_prev: torch.Tensor, xi: torch.Tensor, spec: NoiseSpec, decay: float,
                 alpha: float, beta: float) -> torch.Tensor:
    """``N(lambda V(t-1)) + N'`` (eqs. 7-10)."""
    return standardise_potential(decay * v_prev, alpha, beta) + residual_noise(xi, spec, alpha, beta)


def check_alpha(alpha: object) -> float:
    """``alpha`` as a float > 0 (``float('inf')`` allowed: stage 3 without the potential term)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a Python float, got {type(alpha).__name__} {alpha!r}")
    a = float(alpha)
    if math.isnan(a) or a <= 0:
        raise ValueError(f"alpha must be > 0 (or float('inf')), got {a}")
    return a
