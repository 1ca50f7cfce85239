"""Which module a strategy drives with ``[T, B, ...]``: the model, or its multi-step body.

Strategies own the time axis (they encode ``[B, ...] -> [T, B, ...]``, run, and read out
``[T, B, C] -> [B, C]``). Some real models do both themselves: SpikingJelly's tutorial
``CSNN.forward`` is ``x_seq = x.unsqueeze(0).expand(T, ...)``, ``self.conv_fc(x_seq)``,
``.mean(0)``. Fed ``[T, B, ...]`` such a model fails inside torch (or reads out too early).

:func:`driven` tells the two apart by one probe on the first call (batch of one sample, eval
mode, no gradient, state reset afterwards, result cached per model):

* ``model(x_seq)`` returns ``[T, 1, ...]``: the model is multi-step; it is driven as it is;
* otherwise the module holding every spiking neuron (descending from the model while a single
  child holds them all) is tried: if it maps ``x_seq`` to ``[T, 1, ...]`` it is the body, and the
  strategy drives it (it shares the model's parameters, so training it trains the model; the
  model's own time-axis code and readout are bypassed);
* else :class:`~snnplug.errors.ShapeError` names the model and the fix.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from snnplug.errors import ShapeError

_CACHE: "weakref.WeakKeyDictionary[nn.Module, nn.Module]" = weakref.WeakKeyDictionary()


def _is_neuron(m: nn.Module) -> bool:
    from snnplug.backends.spikingjelly import is_spiking_neuron

    return is_spiking_neuron(m)


def _body(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The deepest module below ``model`` that holds every spiking neuron (None if none or if
    the neurons are spread over several children of the model)."""
    total = sum(1 for m in model.modules() if _is_neuron(m))
    if total == 0:
        return None
    path, cur = [], model
    while True:
        holders = [(n, c) for n, c in cur.named_children() if sum(1 for m in c.modules() if _is_neuron(m)) == total]
        if len(holders) != 1 or _is_neuron(holders[0][1]):
            break
        path.append(holders[0][0])
        cur = holders[0][1]
    return (".".join(path), cur) if cur is not model else None


def _probe(module: nn.Module, x_seq: torch.Tensor) -> tuple[Any, BaseException | None]:
    """``module(x_seq)`` in eval mode without gradient; training flags, state and the random
    number generators restored."""
    from snnplug.backends.spikingjelly import reset

    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    reset(module)
    try:  # the probe must not consume random numbers the user's run would draw (noise neurons)
        with torch.no_grad(), torch.random.fork_rng(devices=[x_seq.device] if x_seq.is_cuda else []):
            return module(x_seq), None
    except Exception as exc:  # noqa: BLE001 - any failure means "not this layout"
        return None, exc
    finally:
        for m, f in flags:
            m.training = f
        reset(module)


def _multi_step(out: Any, T: int) -> bool:
    return isinstance(out, torch.Tensor) and out.dim() >= 3 and out.shape[0] == T and out.shape[1] == 1


def driven(model: nn.Module, x_seq: torch.Tensor) -> nn.Module:
    """The module to run on ``x_seq [T, B, ...]`` for ``model`` (see the module docstring)."""
    hit = _CACHE.get(model)
    if hit is not None:
        return hit
    T = x_seq.shape[0]
    probe = x_seq[:, :1]
    out, err = _probe(model, probe)
    if _multi_step(out, T):
        _CACHE[model] = model
        return model
    got = f"raised {type(err).__name__}: {err}" if err is not None else \
        f"returned {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
    name = type(model).__name__
    found = _body(model)
    if found is not None:
        path, body = found
        out_b, _ = _probe(body, probe)
        if _multi_step(out_b, T):
            _CACHE[model] = body
            return body
    hint = (f"pass the part of {name} that maps [T, B, ...] to [T, B, classes] (e.g. net.{found[0]}) to "
            f"the strategy" if found is not None else
            f"give the strategy a multi-step model ([T, B, ...] -> [T, B, classes]); SpikingJelly "
            f"models: functional.set_step_mode(net, 'm')")
    raise ShapeError(f"{name} does not map the strategy's input [T, B, ...] = {tuple(x_seq.shape)} to "
                     f"[T, B, classes] (for a 1-sample probe it {got}), and no part of it holding all its "
                     f"spiking neurons does; {hint}, or train it in your own loop after snnplug.apply")
