"""snnplug: published SNN training and conversion methods as plugins for SpikingJelly and snnTorch.

Importing snnplug is cheap: torch, SpikingJelly and the plugins load on first use.

    import snnplug
    net = snnplug.apply(net, neuron="dsr-if", T=20)   # module surgery on a SpikingJelly model
    strategy = snnplug.strategy("dsr", T=20)
    snn = snnplug.convert(ann, "opi", T=16, calibration=loader)
"""

from __future__ import annotations

from typing import Any

from snnplug.errors import (
    PluginConflictError,
    ShapeError,
    SnnplugError,
    TimeStepError,
    UnknownPluginError,
)
from snnplug.registry import get_registry, list_plugins

__version__ = "0.1.0"

__all__ = [
    "apply", "neuron", "normalizer", "strategy", "convert", "list_plugins", "get_registry",
    "SnnplugError", "UnknownPluginError", "PluginConflictError", "ShapeError", "TimeStepError",
]


def neuron(name: str, **kw: Any) -> Any:
    """Build the multi-step neuron registered as ``name`` (e.g. ``"dsr-if"``)."""
    return get_registry().get("neuron", name).factory(**kw)


def normalizer(name: str, *args: Any, **kw: Any) -> Any:
    """Build the normalizer registered as ``name``: ``normalizer("bntt", 64, T=25)``."""
    return get_registry().get("normalizer", name).factory(*args, **kw)


def strategy(name: str, **kw: Any) -> Any:
    """Build the training strategy registered as ``name`` (a :class:`snnplug.strategies.Strategy`)."""
    return get_registry().get("strategy", name).factory(**kw)


def convert(model: Any, name: str, **kw: Any) -> Any:
    """Convert ``model`` with the converter registered as ``name`` (e.g. ``"opi"``)."""
    return get_registry().get("converter", name).factory(model, **kw)


def apply(model: Any, **kw: Any) -> Any:
    """Module surgery; see :func:`snnplug.surgery.apply`."""
    from snnplug.surgery import apply as _apply

    return _apply(model, **kw)
