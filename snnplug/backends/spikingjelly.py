"""SpikingJelly adapter: the one place that knows SpikingJelly's version quirks.

Targets SpikingJelly 2.x (``spikingjelly.activation_based``); 0.0.0.0.14 shares the module API
used here (``MemoryModule``, ``step_mode``, ``functional.reset_net``). Differences handled here:

* 2.x caches the module list in ``functional.reset_net``; after module surgery the cache must be
  dropped with ``functional.invalidate_reset_cache`` (absent in 0.0.0.0.14).
* 2.x has no ``backend=`` argument: kernels are chosen automatically. A 0.0.0.0.14 script that
  passes ``backend='cupy'`` fails inside SpikingJelly with a TypeError; :func:`explain_legacy_error`
  turns that into the change to make.
* ``import spikingjelly.datasets`` imports torchaudio eagerly: never imported here.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from torch import nn

from snnplug.errors import SnnplugError


@lru_cache(maxsize=1)
def sj() -> Any:
    """``spikingjelly.activation_based`` with neuron/functional/layer/surrogate/base loaded."""
    try:
        ab = importlib.import_module("spikingjelly.activation_based")
        for sub in ("base", "neuron", "functional", "layer", "surrogate"):
            importlib.import_module(f"spikingjelly.activation_based.{sub}")
    except ImportError as exc:  # pragma: no cover - spikingjelly is a core dependency
        raise SnnplugError(
            "SpikingJelly is not importable; install it with `pip install 'spikingjelly>=2.0'`"
        ) from exc
    return ab


def memory_module_base() -> type:
    """``spikingjelly.activation_based.base.MemoryModule`` (base class of stateful modules)."""
    return sj().base.MemoryModule


def is_spiking_neuron(m: nn.Module) -> bool:
    """True for SpikingJelly neurons and for snnplug neurons (``snnplug_spiking = True``)."""
    if getattr(m, "snnplug_spiking", False):
        return True
    return isinstance(m, sj().neuron.BaseNode)


def reset(net: nn.Module) -> None:
    """Reset every stateful module of ``net`` (SpikingJelly ``reset_net``)."""
    sj().functional.reset_net(net)


def invalidate_reset_cache(net: nn.Module) -> None:
    """Drop SpikingJelly 2.x's cached module list after module surgery (no-op on 0.0.0.0.14)."""
    fn = getattr(sj().functional, "invalidate_reset_cache", None)
    if fn is not None:
        fn(net)


def step_mode_of(m: nn.Module) -> str | None:
    return getattr(m, "step_mode", None)


def explain_legacy_error(exc: TypeError) -> str | None:
    """If ``exc`` comes from 0.0.0.0.14-style arguments on SpikingJelly 2.x, say what to change."""
    msg = str(exc)
    if "backend" in msg and "unexpected keyword" in msg:
        return ("SpikingJelly 2.x has no `backend=` argument (kernels are chosen automatically: "
                "Triton/CUDA on GPU, torch on CPU); remove `backend=...` from the neuron "
                "constructors, or keep spikingjelly==0.0.0.0.14 installed for that script")
    return None
