"""BNTT's temporal early exit (Kim & Panda 2021, Sec. 3.4, Fig. 3 and 6).

A low γ_t raises the effective threshold (eq. 16), so once the mean γ of *every* BNTT layer has
fallen below a threshold, later steps hardly change the output. The exit step is fixed before
inference from the parameters alone::

    ḡ[l, t] = mean_c γ_{l,t,c}                    (the paper's Fig. 3 table, one row per layer)
    t_exit  = max{ t : max_l ḡ[l, t] ≥ threshold }   (1-based; T if that is every step; ≥ 1)

i.e. the network runs up to the last step at which some layer's mean γ still reaches the
threshold; from ``t_exit + 1`` on every layer is below it (Fig. 3: threshold 0.1 -> t = 20).
With the paper's rise-and-fall profiles this is the same as "the first step at which all layers
have fallen below"; unlike that reading it never stops before a deep layer's late peak.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from snnplug.checks import as_float

from snnplug_bntt.norm import BNTT


def bntt_layers(model: nn.Module) -> list[tuple[str, BNTT]]:
    """``(name, layer)`` for every BNTT layer of ``model``, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BNTT)]


@torch.no_grad()
def gamma_profile(model: nn.Module) -> torch.Tensor:
    """Mean γ per BNTT layer and step: ``[layers, T]`` (the paper's Fig. 3)."""
    layers = bntt_layers(model)
    if not layers:
        raise ValueError("the model has no BNTT layer; early exit needs BNTT (snnplug.apply(net, normalizer='bntt'))")
    Ts = {m.T for _, m in layers}
    if len(Ts) != 1:
        raise ValueError(f"BNTT layers disagree on T ({sorted(Ts)}); rebuild them with one T")
    return torch.stack([m.weight.detach().float().mean(1).cpu() for _, m in layers])


def exit_step_from_profile(profile: torch.Tensor, threshold: float) -> int:
    """``t_exit`` for a ``[layers, T]`` mean-γ profile (see the module docstring)."""
    threshold = as_float("threshold", threshold)
    if profile.dim() != 2 or profile.shape[1] < 1:
        raise ValueError(f"profile must be [layers, T], got shape {tuple(profile.shape)}")
    active = (profile >= threshold).any(0).nonzero()
    return int(active.max()) + 1 if active.numel() else 1


def exit_step(model: nn.Module, threshold: float) -> int:
    """``t_exit`` of ``model``'s BNTT layers for ``threshold``."""
    return exit_step_from_profile(gamma_profile(model), threshold)


def early_exit_sweep(strategy: Any, model: nn.Module, loader: Iterable, thresholds: Iterable[float],
                     device: str | torch.device = "cpu") -> list[dict[str, float]]:
    """Accuracy and exit step for each γ threshold (the paper's Fig. 6).

    One simulation of all T steps per batch (:func:`snnplug.engine.evaluate_anytime`) gives the prediction
    after every step, so each threshold is scored on the same spike trains. Returns one dict per
    threshold: ``threshold``, ``exit_step`` (the same for every sample: the rule depends on γ
    only), ``mean_exit_step``, ``steps_saved`` (fraction of T) and ``accuracy``.
    """
    from snnplug.engine import evaluate_anytime

    T = int(strategy.T)
    profile = gamma_profile(model)
    exits = {float(th): min(T, exit_step_from_profile(profile[:, :T], th)) for th in thresholds}
    curve = evaluate_anytime(strategy, model, loader, T, device=device)
    return [{"threshold": th, "exit_step": t, "mean_exit_step": float(t), "steps_saved": 1.0 - t / T,
             "accuracy": curve[t - 1]} for th, t in exits.items()]
