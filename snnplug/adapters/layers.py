"""Multi-step forms of the stateless layers of a per-step (snnTorch) model.

snnTorch calls every layer once per time step on ``[B, ...]``. In SpikingJelly's multi-step form
stateless layers run once on ``[T*B, ...]`` (``layer.SeqToANNContainer``), which is what makes it
fast. Two layers need care:

* batch norm in training mode normalises with the statistics of the batch it sees, so one call
  on ``T*B`` samples differs from ``T`` calls on ``B``; :class:`StepwiseBatchNorm2d` (and 1d/3d)
  keep snnTorch's per-step statistics (and its ``T`` running-statistics updates) in training and
  run vectorised in evaluation, where batch norm is elementwise;
* ``layers="per-step"`` wraps layers in ``layer.MultiStepContainer`` (one call per step, the
  same calls snnTorch makes): bit-identical whatever the BLAS does with other batch sizes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from snnplug.backends.spikingjelly import sj


class _StepwiseBN:
    """Per-step statistics in training, one vectorised call in evaluation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.step_mode == "s":  # type: ignore[attr-defined]
            return self.super_forward(x)  # type: ignore[attr-defined]
        per_step = self.training or not self.track_running_stats  # type: ignore[attr-defined]
        if per_step:
            return torch.stack([self.super_forward(x[t]) for t in range(x.shape[0])])  # type: ignore[attr-defined]
        return self.super_forward(x.flatten(0, 1)).view(x.shape)  # type: ignore[attr-defined]


def _bn_classes() -> dict[type, type]:
    L = sj().layer

    class StepwiseBatchNorm1d(_StepwiseBN, L.BatchNorm1d):
        """``BatchNorm1d`` over ``[T, B, C(, L)]`` with per-step batch statistics while training."""

    class StepwiseBatchNorm2d(_StepwiseBN, L.BatchNorm2d):
        """``BatchNorm2d`` over ``[T, B, C, H, W]`` with per-step batch statistics while training."""

    class StepwiseBatchNorm3d(_StepwiseBN, L.BatchNorm3d):
        """``BatchNorm3d`` over ``[T, B, C, D, H, W]`` with per-step batch statistics while training."""

    return {nn.BatchNorm1d: StepwiseBatchNorm1d, nn.BatchNorm2d: StepwiseBatchNorm2d,
            nn.BatchNorm3d: StepwiseBatchNorm3d}


_BN: dict[type, type] | None = None


def stepwise_batchnorm(bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """The multi-step, per-step-statistics copy of ``bn`` (weights and running stats copied)."""
    global _BN
    if _BN is None:
        _BN = _bn_classes()
    base = next(k for k in _BN if isinstance(bn, k))
    new = _BN[base](bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                    track_running_stats=bn.track_running_stats, step_mode="m")
    for name in ("weight", "bias"):  # snnTorch's BatchNormTT layers drop the bias
        if getattr(bn, name) is None:
            setattr(new, name, None)
    ref = next(iter([*bn.parameters(), *bn.buffers()]), None)
    if ref is not None:
        new = new.to(ref.device)
    new.load_state_dict(bn.state_dict())
    new.train(bn.training)
    return new


def is_batchnorm(m: nn.Module) -> bool:
    return isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))


def vectorized(module: nn.Module) -> nn.Module:
    """A stateless module run once on ``[T*B, ...]`` (SpikingJelly ``SeqToANNContainer``)."""
    return sj().layer.SeqToANNContainer(copy.deepcopy(module))


def per_step(module: nn.Module) -> nn.Module:
    """A module run once per time step (SpikingJelly ``MultiStepContainer``)."""
    return sj().layer.MultiStepContainer(copy.deepcopy(module))
