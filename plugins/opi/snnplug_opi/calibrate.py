"""Threshold calibration for plain-ReLU layers: θ = a high percentile of the ANN's activations.

For each ReLU call site, θ is the mean over calibration batches of the per-batch ``percentile``
(default 99.9) of the ReLU's outputs (all elements, zeros included, as in SpikingJelly's
``VoltageHook``; robust normalization, Rueckauer et al. 2017). A plain mean replaces
SpikingJelly's momentum average so the result does not depend on the batch order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from snnplug.errors import SnnplugError
from snnplug_opi.functional import percentile


class PercentileObserver(nn.Module):
    """Pass-through module recording the ``q``-th percentile of every batch it sees."""

    def __init__(self, q: float) -> None:
        super().__init__()
        self.q = float(q)
        self.values: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.values.append(percentile(x, self.q))
        return x

    def threshold(self, where: str) -> float:
        if not self.values:
            raise SnnplugError(f"no calibration batch reached the activation at {where}")
        theta = sum(self.values) / len(self.values)
        if not theta > 0.0:
            raise SnnplugError(
                f"the activation at {where} is {theta:g} at its {self.q}th percentile on the "
                f"calibration data (the layer is dead); a threshold must be > 0. Use more/other "
                f"calibration data, a higher percentile, or train with strategy 'opi-ann'"
            )
        return theta


def iter_batches(calibration: Any, *, batch_size: int = 256, max_batches: int | None = None,
                 device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
    """Input batches from a tensor ``[N, ...]`` (split into ``batch_size`` rows) or an iterable
    of tensors / ``(x, y, ...)`` tuples / dicts with an ``"x"``/``"input"``/``"image"`` key."""
    if torch.is_tensor(calibration):
        if calibration.dim() < 2:
            raise SnnplugError(f"calibration tensor must be a batch [N, ...], got shape "
                               f"{tuple(calibration.shape)}")
        source: Any = calibration.split(batch_size)
    else:
        try:
            source = iter(calibration)
        except TypeError:
            raise TypeError(f"calibration must be a tensor [N, ...] or an iterable of batches "
                            f"(e.g. a DataLoader), got {type(calibration).__name__}") from None
    n = 0
    for item in source:
        if max_batches is not None and n >= max_batches:
            break
        x = item
        if isinstance(item, (tuple, list)):
            if not item:
                raise SnnplugError("calibration yielded an empty batch")
            x = item[0]
        elif isinstance(item, dict):
            key = next((k for k in ("x", "input", "image", "images", "data") if k in item), None)
            if key is None:
                raise SnnplugError(f"calibration dict batches need an 'x'/'input'/'image' key, got "
                                   f"{sorted(item)}")
            x = item[key]
        if not torch.is_tensor(x):
            raise TypeError(f"calibration batch input must be a tensor, got {type(x).__name__}")
        yield x.to(device) if device is not None else x
        n += 1
    if n == 0:
        raise SnnplugError("calibration data is empty")
