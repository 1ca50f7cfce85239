"""The representation network of a DSR model: the same layers with ``clamp(x, 0, Vth)``
activations (trainable ``Vth`` per layer, projected to ``>= bound``). This is the T -> infinity
limit of DSR-IF (paper Proposition 2) and the ANN baseline of ``benchmarks/dsr.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from snnplug.checks import as_float


class ClampAct(nn.Module):
    """``y = clamp(x, 0, Vth)`` with a trainable scalar ``Vth`` (PACT-like, Meng et al. Sec. 4)."""

    def __init__(self, v_threshold: float = 6.0, v_threshold_bound: float = 0.01,
                 train_threshold: bool = True) -> None:
        super().__init__()
        vth = as_float("v_threshold", v_threshold, positive=True)
        self.v_threshold_bound = as_float("v_threshold_bound", v_threshold_bound, positive=True)
        if train_threshold:
            self.v_threshold = nn.Parameter(torch.tensor(vth))
        else:
            self.register_buffer("v_threshold", torch.tensor(vth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if bool(self.v_threshold < self.v_threshold_bound):
                self.v_threshold.clamp_(min=self.v_threshold_bound)
        return torch.minimum(torch.relu(x), self.v_threshold.to(x.dtype))
