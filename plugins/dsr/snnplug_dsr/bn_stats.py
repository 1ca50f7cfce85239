"""Sequence statistics of one training-mode batch norm, merged chunk by chunk (Chan et al.).

A multi-step batch norm normalises every step with the mean/variance over all ``T*B`` (and
spatial) positions (SpikingJelly's multi-step BN, the DSR authors' code). A streamed simulation
sees the sequence in chunks, so the statistics are merged with Chan's parallel update in float64
and fixed once complete; the running statistics are then updated once per iteration, as one
``T*B`` batch would update them.
"""

from __future__ import annotations

import torch
from torch import nn

from snnplug.errors import SnnplugError


class BNStats:
    """Running mean/variance of one batch norm's input over a whole sequence."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        self.bn = bn
        self.multi_step = getattr(bn, "step_mode", "s") == "m"
        self.n = 0
        self.m: torch.Tensor | None = None
        self.M2: torch.Tensor | None = None
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the batch norm sees it: ``[T*B, C, ...]`` for a multi-step one."""
        return x.flatten(0, 1) if self.multi_step else x

    def accumulate(self, x2: torch.Tensor) -> None:
        """Merge the per-channel statistics of ``x2`` ([N, C, ...])."""
        eps = self.bn.eps  # native_batch_norm: torch's fastest per-channel statistics on CPU
        _, mean_c, invstd = torch.native_batch_norm(x2, None, None, None, None, True, 0.0, eps)
        mean_c = mean_c.double()
        var_c = invstd.double().pow(-2) - eps
        n_c = x2.numel() // x2.shape[1]
        if self.n == 0:
            self.m, self.M2, self.n = mean_c, var_c * n_c, n_c
        else:
            n = self.n + n_c
            delta = mean_c - self.m
            self.m = self.m + delta * (n_c / n)
            self.M2 = self.M2 + var_c * n_c + delta * delta * (self.n * n_c / n)
            self.n = n

    def stand_for(self, seen: int, total: int) -> None:
        """The ``seen`` steps merged so far stand for ``total`` identical-statistics steps (an
        input constant in time): scale the count, keep mean and variance."""
        if self.M2 is None:
            raise SnnplugError("batch norm statistics sweep saw no data (internal)")
        self.n, self.M2 = self.n * total // seen, self.M2 * (total / seen)

    def finalize(self, dtype: torch.dtype) -> None:
        """Fix mean/variance (in ``dtype``) and update the running statistics once."""
        if self.n == 0 or self.m is None or self.M2 is None:
            raise SnnplugError("batch norm statistics sweep saw no data (internal)")
        self.mean = self.m.to(dtype)
        self.var = (self.M2 / self.n).to(dtype)
        bn = self.bn
        if bn.training and bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                f = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                unbiased = self.M2 / max(self.n - 1, 1)
                bn.running_mean.mul_(1 - f).add_(self.m.to(bn.running_mean.dtype), alpha=f)
                bn.running_var.mul_(1 - f).add_(unbiased.to(bn.running_var.dtype), alpha=f)
