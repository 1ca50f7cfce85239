"""Functional core of OPI (Bu et al., AAAI 2022): pure tensor functions, no modules, no state.

Notation: ``θ`` firing threshold (= the ANN's clipping bound λ), ``c`` initial-potential fraction
(``v(0) = c·θ``; the paper's optimum is ``c = 1/2``), ``T`` time steps.

* clipped ReLU (the ANN activation):            ``a = clip(z, 0, λ)``
* IF neuron, soft reset, fires on ``≥``:         ``h_t = v_{t-1} + x_t;  s_t = 1[h_t ≥ θ];  v_t = h_t − θ·s_t``
* its spike count for a constant input ``z``:   ``N_T = clamp(⌊T·z/θ + c⌋, 0, T)``   (paper eq. 11/12)

Reference: T. Bu, J. Ding, Z. Yu, T. Huang, "Optimized Potential Initialization for
Low-latency Spiking Neural Networks", AAAI 2022.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Surrogate = Callable[[torch.Tensor], torch.Tensor]


def clip_relu(x: torch.Tensor, upper: torch.Tensor | float) -> torch.Tensor:
    """``clip(x, 0, λ) = min(max(x, 0), λ)``; differentiable in ``x`` and in a tensor ``λ``
    (``∂/∂λ = 1[x > λ]``, summed over the elements that ``λ`` broadcasts to)."""
    if not torch.is_tensor(upper):
        return x.clamp(0.0, float(upper))
    return torch.minimum(F.relu(x), upper.to(dtype=x.dtype))


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """``1[x ≥ 0]`` in ``x``'s dtype (no gradient)."""
    return (x >= 0).to(x.dtype)


def if_step(x: torch.Tensor, v: torch.Tensor, theta: float,
            surrogate: Surrogate | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One IF step with soft reset: ``h = v + x; s = 1[h ≥ θ]; v' = h − θ·s``.

    Returns ``(s, v')``. ``surrogate`` (e.g. a SpikingJelly surrogate function) replaces the
    Heaviside step when gradients through spikes are wanted; its forward must be ``1[· ≥ 0]``.
    """
    h = v + x
    s = (surrogate or heaviside)(h - theta)
    return s, h - theta * s


def if_multi_step(x_seq: torch.Tensor, v: torch.Tensor, theta: float,
                  surrogate: Surrogate | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """IF over a time-major sequence ``[T, ...]`` from potential ``v`` (``v(0)``).

    Returns ``(spikes [T, ...], v_T)``. Charge is conserved exactly:
    ``θ·Σ_t s_t = Σ_t x_t + v(0) − v_T``.
    """
    spikes = []
    for t in range(x_seq.shape[0]):
        s, v = if_step(x_seq[t], v, theta, surrogate)
        spikes.append(s)
    return torch.stack(spikes), v


def spike_count(z: torch.Tensor, theta: float, T: int, c: float) -> torch.Tensor:
    """Closed-form spike count of the IF neuron above for a constant input ``z`` each step,
    ``v(0) = c·θ`` and ``0 ≤ c < 1``: ``N_T = clamp(⌊T·z/θ + c⌋, 0, T)``.

    (Below zero the neuron never fires; above ``θ`` per step it fires every step, so the
    count saturates at ``T``.)
    """
    return torch.clamp(torch.floor(T * z / theta + c), 0, T)


def quantized_activation(z: torch.Tensor, theta: float, T: int, c: float) -> torch.Tensor:
    """The SNN's time-averaged output for a constant input ``z``: ``θ/T · N_T`` (paper's ``f'``).

    With ``c = 1/2`` this is QCFS (Bu et al., ICLR 2022) with ``L = T`` quantization levels
    and shift ``φ = 1/2``.
    """
    return theta / T * spike_count(z, theta, T, c)


def percentile(x: torch.Tensor, q: float) -> float:
    """The ``q``-th percentile (0–100) of all elements of ``x``, by ``kthvalue`` (no size limit,
    unlike ``torch.quantile``); nearest-rank: the ``⌈q/100·n⌉``-th smallest value."""
    flat = x.detach().reshape(-1).float()
    n = flat.numel()
    if n == 0:
        raise ValueError("percentile of an empty tensor")
    k = min(n, max(1, int(torch.ceil(torch.tensor(q / 100.0 * n)).item())))
    return float(flat.kthvalue(k).values.item())
