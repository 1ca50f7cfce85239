"""The template's neuron: a functional core and a thin SpikingJelly MemoryModule wrapper."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import base

from snnplug.checks import as_float, as_steps, check_sequence


class _BoxcarSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v_minus_th: torch.Tensor, width: float) -> torch.Tensor:
        ctx.save_for_backward(v_minus_th)
        ctx.width = width
        return (v_minus_th >= 0).to(v_minus_th.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad * (u.abs() < ctx.width / 2).to(grad.dtype) / ctx.width, None


def if_step(v: torch.Tensor, x: torch.Tensor, v_threshold: float, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``v += x; s = 1[v >= θ]; v -= θ s``. Returns ``(spike, new v)``."""
    v = v + x
    s = _BoxcarSpike.apply(v - v_threshold, width)
    return s, v - s * v_threshold


class HeavisideIF(base.MemoryModule):
    """Soft-reset IF neuron, multi-step by default (input ``[T, B, ...]``)."""

    snnplug_spiking = True

    def __init__(self, T: int = 4, v_threshold: float = 1.0, width: float = 1.0, step_mode: str = "m") -> None:
        super().__init__()
        self.T = as_steps("T", T)
        self.v_threshold = as_float("v_threshold", v_threshold, positive=True)
        self.width = as_float("width", width, positive=True)
        self.step_mode = step_mode
        self.register_memory("v", 0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        s, self.v = if_step(self.v, x, self.v_threshold, self.width)
        return s

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_sequence(x_seq, who="heaviside-if", min_rank=2, T=self.T)
        return torch.stack([self.single_step_forward(x) for x in x_seq])
