"""Built-in baseline: surrogate-gradient BPTT with SpikingJelly's stock neurons.

The reference every method plugin is compared against. LIF (Wu et al. 2018; SpikingJelly
``LIFNode``): ``H_t = V_{t-1} + (X_t - (V_{t-1} - V_reset)) / tau``, ``S_t = Θ(H_t - V_th)``,
hard reset ``V_t = H_t (1 - S_t) + V_reset S_t``; backward through time with the ATan surrogate
``σ'(x) = α / (2 (1 + (π α x / 2)^2))``. Registered through the ``snnplug`` entry point like any
plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from snnplug.checks import as_float, as_steps
from snnplug.hookspecs import hookimpl
from snnplug.strategies import OptimConfig, Strategy
from snnplug.types import StrategyPlugin

PAPER = "Wu et al., Spatio-temporal backpropagation for training high-performance SNNs, Front. Neurosci. 2018"


class BPTTStrategy(Strategy):
    """Surrogate-gradient BPTT on a SpikingJelly multi-step network (direct input, rate readout)."""

    name = "bptt"
    default_epochs = 10

    def __init__(self, *, T: int = 4, frames: bool = False, neuron: str = "lif", tau: float = 2.0,
                 lr: float = 1e-3, norm: bool = True, channels: Sequence[int] = (32, 64),
                 hidden: int = 128) -> None:
        super().__init__(T=T, frames=frames)
        if neuron not in ("lif", "if"):
            raise ValueError(f"bptt neuron must be 'lif' or 'if', got {neuron!r}")
        if not isinstance(norm, bool):
            raise TypeError(f"norm must be True or False, got {norm!r}")
        if as_float("tau", tau) <= 1.0:
            raise ValueError(f"tau must be > 1 (the LIF decay is 1/tau), got {tau!r}")
        self.neuron, self.tau, self.lr, self.norm = neuron, float(tau), as_float("lr", lr, positive=True), norm
        self.channels = tuple(as_steps("channels", c) for c in channels)
        self.hidden = as_steps("hidden", hidden)

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "neuron": self.neuron, "tau": self.tau, "lr": self.lr,
                "norm": self.norm, "channels": list(self.channels), "hidden": self.hidden}

    def make_node(self) -> nn.Module:
        from snnplug.backends.spikingjelly import sj

        ab = sj()
        if self.neuron == "lif":
            return ab.neuron.LIFNode(tau=self.tau, surrogate_function=ab.surrogate.ATan(),
                                     detach_reset=True, step_mode="m")
        return ab.neuron.IFNode(surrogate_function=ab.surrogate.ATan(), detach_reset=True, step_mode="m")

    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        from snnplug.models import backbone

        return backbone(input_shape, num_classes, node=self.make_node, norm=self.norm, channels=self.channels,
                        hidden=self.hidden)

    def optim_config(self) -> OptimConfig:
        return OptimConfig(name="adam", lr=self.lr, schedule="cosine")


def bptt(**kw: Any) -> BPTTStrategy:
    """Surrogate-gradient BPTT baseline (SpikingJelly LIFNode/IFNode, ATan surrogate, T=4).

    LIF: ``H_t = V_{t-1} + (X_t - V_{t-1}) / tau``, spike ``S_t = Θ(H_t - 1)``, hard reset;
    gradients flow through time (Wu et al. 2018).
    """
    return BPTTStrategy(**kw)


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="bptt", factory=bptt, paper=PAPER, in_default_run=True,
                           run_epochs=3, shared_backbone=True,
                           summary="surrogate-gradient BPTT baseline with SpikingJelly LIF/IF")]
