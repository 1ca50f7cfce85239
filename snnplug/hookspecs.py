"""Hook specifications: one registration hook per plugin family.

Every hook takes no arguments and returns an iterable of frozen registration dataclasses from
:mod:`snnplug.types`. Heavy imports (torch, spikingjelly, ...) belong inside the factories, so
discovering plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from snnplug.types import ConverterPlugin, NeuronPlugin, NormalizerPlugin, StrategyPlugin

PROJECT = "snnplug"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def snnplug_neurons() -> Iterable[NeuronPlugin]:
    """Register multi-step spiking neurons (input and output ``[T, B, ...]``)."""


@hookspec
def snnplug_normalizers() -> Iterable[NormalizerPlugin]:
    """Register normalization layers that can replace ``nn.BatchNorm*`` in a model."""


@hookspec
def snnplug_training_strategies() -> Iterable[StrategyPlugin]:
    """Register training strategies (objects following :class:`snnplug.strategies.Strategy`)."""


@hookspec
def snnplug_converters() -> Iterable[ConverterPlugin]:
    """Register converters that turn a trained model into a multi-step SNN."""
