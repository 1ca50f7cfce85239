"""Strategy ``heaviside``: surrogate-gradient BPTT of an MLP with the template's neuron.

Follows :mod:`snnplug.strategies`: every input given at construction (``T``, ``frames`` and the
method's own options) and returned by ``config()``; only the methods the method changes are
overridden (here: the network and the optimizer defaults; encoding, readout, loss and
prediction are the base strategy's).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snnplug.strategies import OptimConfig, Strategy


class HeavisideStrategy(Strategy):
    """Direct input, mean-over-time readout, cross-entropy; Adam with a cosine schedule."""

    name = "heaviside"
    default_epochs = 5

    def __init__(self, *, T: int = 4, frames: bool = False, hidden: int = 128, lr: float = 1e-3) -> None:
        super().__init__(T=T, frames=frames)
        self.hidden, self.lr = int(hidden), float(lr)

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "hidden": self.hidden, "lr": self.lr}

    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from snnplug.models import mlp
        from snnplug_heaviside.neuron import HeavisideIF

        size = 1
        for d in input_shape:
            size *= int(d)
        return mlp(size, num_classes, hidden=(self.hidden,), node=lambda: HeavisideIF(T=self.T))

    def optim_config(self) -> OptimConfig:
        return OptimConfig(name="adam", lr=self.lr, schedule="cosine")
