"""Converter ``noise-multistep``: a stage-1 (T=1) noisy SNN run for T=N steps (stage 2 or 3).

The trained weights are copied unchanged and frozen (paper: "no gradient calculation and any
training in stages 2 and 3"); each noisy neuron is switched to the chosen stage, with seeded
noise (layer i uses ``seed + i``). The result maps ``[T', B, ...] -> [T', B, classes]`` for any
``T' <= T``; the prediction is the mean over steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnplug.backends.spikingjelly import invalidate_reset_cache, reset
from snnplug.checks import any_length, as_steps, check_sequence, copy_model
from snnplug.errors import UnsupportedModuleError
from snnplug_noise.control import configure, noisy_nodes


class NoiseSNN(nn.Module):
    """A converted noisy SNN. ``forward`` resets the state (re-seeding the noise) and runs."""

    def __init__(self, net: nn.Module, T: int) -> None:
        super().__init__()
        self.net = net
        self.T = as_steps("T", T)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_sequence(x_seq, who="noise-multistep SNN", min_rank=3, T=self.T, allow_shorter=True)
        reset(self.net)
        with any_length(self.net):  # documented: any T' <= T (checked above)
            return self.net(x_seq)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def convert(model: nn.Module, T: int = 10, *, stage: int = 3, alpha: float = 4.0,
            beta: float = 0.5, seed: int = 0, calibration: Any = None) -> NoiseSNN:
    """Copy ``model`` (trained by strategy ``noise``) into a frozen stage-2/3 SNN for ``T`` steps.

    ``calibration`` is accepted because ``snnplug convert`` passes a loader to every converter;
    this conversion is data-free (eqs. 7-10 use each sample's own potentials), so it is unused.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"noise-multistep converts an nn.Module, got {type(model).__name__}")
    T = as_steps("T", T)
    if isinstance(model, NoiseSNN):
        model = model.net
    if not noisy_nodes(model):
        raise UnsupportedModuleError(
            "noise-multistep needs a model with noisy LIF neurons (trained by strategy 'noise'); "
            "build it with snnplug.strategy('noise').build_model(...) or "
            "snnplug.apply(net, neuron='noise-lif') and train it first")
    if stage not in (2, 3):
        raise ValueError(f"noise-multistep stage must be 2 or 3, got {stage!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"noise-multistep needs a non-negative int seed (reproducible inference), got {seed!r}")
    net = copy_model(model, "noise-multistep")
    configure(net, stage=stage, alpha=alpha, beta=beta, seed=seed, T=T)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    invalidate_reset_cache(net)
    return NoiseSNN(net, T)
