"""Registers the neuron ``heaviside-if`` and the strategy ``heaviside`` with snnplug.

The hook returns registration records; the module import stays light (torch and SpikingJelly
load inside the factory).
"""

from __future__ import annotations

from typing import Any

from snnplug.hookspecs import hookimpl
from snnplug.types import NeuronPlugin, StrategyPlugin


def heaviside_if(T: int = 4, v_threshold: float = 1.0, width: float = 1.0) -> Any:
    """Multi-step IF neuron with soft reset and a rectangular surrogate gradient.

    ``v_t = v_{t-1} + x_t``, ``s_t = 1[v_t >= θ]``, ``v_t -= θ s_t``;
    backward ``ds/dv = 1[|v - θ| < width/2] / width`` (Zenke & Vogels 2021, boxcar surrogate).
    """
    from snnplug_heaviside.neuron import HeavisideIF

    return HeavisideIF(T=T, v_threshold=v_threshold, width=width)


@hookimpl
def snnplug_neurons() -> list[NeuronPlugin]:
    return [NeuronPlugin(name="heaviside-if", factory=heaviside_if, replaces=("IFNode",),
                         paper="Zenke & Vogels, Neural Computation 2021",
                         summary="template: soft-reset IF with a boxcar surrogate")]


def heaviside_strategy(**kw: Any) -> Any:
    """Surrogate-gradient BPTT of an MLP of ``heaviside-if`` neurons (direct input, rate readout,
    cross-entropy, Adam 1e-3, cosine; Zenke & Vogels 2021 surrogate). Keywords: T, frames, hidden, lr."""
    from snnplug_heaviside.strategy import HeavisideStrategy

    return HeavisideStrategy(**kw)


@hookimpl
def snnplug_training_strategies() -> list[StrategyPlugin]:
    return [StrategyPlugin(name="heaviside", factory=heaviside_strategy,
                           paper="Zenke & Vogels, Neural Computation 2021",
                           summary="template: BPTT of an MLP of heaviside-if neurons")]
