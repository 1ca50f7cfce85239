"""OPI: ANN-to-SNN conversion with optimal initial membrane potential (Bu et al., AAAI 2022).

Public API (loaded lazily; importing the package is cheap)::

    from snnplug_opi import ClipReLU, OPIIFNode, OPIRecipe, OPISpikingNet, convert

Accuracy after every step of a converted network: ``snnplug.engine.anytime_accuracy(
snnplug.engine.direct_anytime(snn, T), loader)``.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ClipReLU": "snnplug_opi.clip",
    "OPIIFNode": "snnplug_opi.neuron",
    "OPIRecipe": "snnplug_opi.recipe",
    "OPISpikingNet": "snnplug_opi.network",
    "SpikingActivation": "snnplug_opi.network",
    "convert": "snnplug_opi.converter",
    "OPIANNStrategy": "snnplug_opi.strategy",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'snnplug_opi' has no attribute {name!r}")
