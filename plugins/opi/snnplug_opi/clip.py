"""``ClipReLU``: the trainable clipped ReLU ``clip(x, 0, λ)`` of OPI's source ANN (Algorithm 1).

λ is one trainable scalar per layer; it becomes the converted SNN's threshold θ = λ. Guard
against λ ≤ 0: before every training forward λ is *projected* onto ``[min_upper, ∞)`` (in place,
outside autograd), so the gradient of the clip still reaches λ unchanged; a clamp inside the
graph would zero the gradient whenever λ sits at the bound and could freeze it there.
"""

from __future__ import annotations

import torch
from torch import nn

from snnplug.checks import as_float
from snnplug_opi import functional as OF


class ClipReLU(nn.Module):
    r"""``a = clip(x, 0, λ)`` with a trainable per-layer ``λ`` (Bu et al., AAAI 2022, Alg. 1).

    ``init`` is λ's initial value (default 4.0: METHODS.md §3 recommends 4–8; λ = 1 can be
    driven negative early in training). ``min_upper`` is the projection bound that keeps
    λ > 0. ``trainable=False`` freezes λ (a fixed ReLU-n).
    """

    def __init__(self, init: float = 4.0, *, min_upper: float = 1e-3, trainable: bool = True) -> None:
        super().__init__()
        self.min_upper = as_float("min_upper", min_upper, positive=True)
        init = as_float("init", init, positive=True)
        if init < self.min_upper:
            raise ValueError(f"init={init} is below min_upper={self.min_upper}")
        self.upper = nn.Parameter(torch.tensor(init), requires_grad=trainable)

    @property
    def threshold(self) -> float:
        """λ as a Python float, projected (what the converter uses as θ)."""
        return max(float(self.upper.detach()), self.min_upper)

    def project_(self) -> None:
        """Project λ onto ``[min_upper, ∞)`` in place (no autograd). Only when λ is below the
        bound: an in-place write bumps λ's version, which would break the backward of an earlier
        call of the same module in this forward (a shared ``relu`` called twice per torchvision
        BasicBlock)."""
        with torch.no_grad():
            if bool(self.upper < self.min_upper):
                self.upper.clamp_(min=self.min_upper)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.project_()
            return OF.clip_relu(x, self.upper)
        return OF.clip_relu(x, self.upper.clamp(min=self.min_upper))

    def extra_repr(self) -> str:
        return f"upper={float(self.upper.detach()):.4g}, min_upper={self.min_upper}"
