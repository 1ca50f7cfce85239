"""Threshold training pieces used by the DSR strategy (Meng et al., CVPR 2022, Sec. 4).

* projection: :meth:`DSRNode.project_threshold` (``Vth <- max(Vth, Vth_bound)`` in place before
  every forward; the parameter keeps its gradient);
* L2 regulariser: :func:`threshold_l2` adds ``coeff/2 * sum_l Vth_l**2`` to the loss (the
  authors apply weight decay 5e-4 to the thresholds; with SGD this is the same update);
* gradient scaling: ``threshold_grad_scale`` on each neuron multiplies ``dL/dVth`` in backward;
* parameter groups: :func:`param_groups` keeps thresholds out of weight decay and can give them
  their own learning rate (``lr_scale`` times the weights' one; the strategy's
  ``threshold_lr_scale``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnplug_dsr.ann import ClampAct
from snnplug_dsr.neuron import DSRNode


def threshold_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable thresholds of every DSR neuron layer of ``model`` (one scalar per layer),
    and of every ``clamp(x, 0, Vth)`` activation of its representation network (:mod:`.ann`)."""
    return [m.v_threshold for m in model.modules()
            if isinstance(m, (DSRNode, ClampAct)) and isinstance(m.v_threshold, nn.Parameter)]


def threshold_l2(model: nn.Module, coeff: float) -> torch.Tensor:
    """``coeff/2 * sum_l Vth_l**2`` over the trainable thresholds (0 when there are none)."""
    ths = threshold_parameters(model)
    if not ths or coeff == 0.0:
        p = next(model.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else "cpu")
    return 0.5 * coeff * torch.stack([t.reshape(()) for t in ths]).pow(2).sum()


def param_groups(model: nn.Module, weight_decay: float, lr: float | None = None,
                 lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Weights (with ``weight_decay``) and thresholds (no weight decay: :func:`threshold_l2`).

    With ``lr`` given and ``lr_scale != 1`` the threshold group gets ``lr * lr_scale`` (a
    learning-rate schedule then scales it like the others)."""
    ths = {id(p) for p in threshold_parameters(model)}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ths]
    groups: list[dict[str, Any]] = [{"params": rest, "weight_decay": weight_decay}]
    th = [p for p in model.parameters() if id(p) in ths and p.requires_grad]
    if th:
        group: dict[str, Any] = {"params": th, "weight_decay": 0.0, "name": "dsr_thresholds"}
        if lr is not None and lr_scale != 1.0:
            group["lr"] = lr * lr_scale
        groups.append(group)
    return groups
