"""Non-finite guards: a NaN/Inf input, loss or gradient never reaches the weights unnoticed.

One training step is guarded in three places, all cheap next to the step itself:

* the input batch: ``torch.isfinite(x).all()`` before the forward pass (one reduction);
* the buffers (BatchNorm/BNTT running statistics and counters) are snapshotted before the
  forward pass and restored when the step is rejected, so a bad batch cannot poison them
  (buffers are small: two ``[C]`` or ``[T, C]`` tensors per normalisation layer);
* the gradients: one fused ``torch._foreach_norm`` over all of them and a single ``isfinite``
  on the stacked norms (the total norm is finite iff every gradient entry is), i.e. the check
  ``clip_grad_norm_`` does, with one host synchronisation per step.

``mode="raise"`` (default) stops with :class:`NonFiniteError` naming the epoch and step;
``mode="skip"`` drops the step (no optimizer or scheduler step, buffers restored) and counts
it in :attr:`NonFiniteGuard.skipped`. In a loop of your own, call :func:`check_gradients`
between ``loss.backward()`` and ``opt.step()``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from snnplug.errors import SnnplugError

MODES = ("raise", "skip")


class NonFiniteError(SnnplugError, FloatingPointError):
    """A batch, loss or gradient holds NaN or Inf."""


def tensors_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """True when every entry of every tensor is finite (one fused norm per device/dtype group)."""
    ts = [t.detach() for t in tensors if t.is_floating_point() or t.is_complex()]
    if not ts:
        return True
    norms = torch._foreach_norm(ts)
    return bool(torch.isfinite(torch.stack([n.float().to(norms[0].device) for n in norms])).all())


def gradients(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in model.parameters() if p.grad is not None]


def check_gradients(model: nn.Module, where: str = "") -> None:
    """Raise :class:`NonFiniteError` if any gradient of ``model`` holds NaN/Inf (for your own loop:
    call it between ``loss.backward()`` and ``opt.step()``)."""
    if not tensors_finite(gradients(model)):
        raise NonFiniteError(
            f"non-finite gradients{' at ' + where if where else ''}: the weights were not updated; "
            f"check the batch for NaN/Inf values or lower the learning rate"
        )


class NonFiniteGuard:
    """Guards the steps of one training run; see the module docstring."""

    def __init__(self, mode: str = "raise") -> None:
        if mode not in MODES:
            raise ValueError(f"on_nonfinite must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.skipped: list[str] = []  # "epoch E step S: reason"
        self._buffers: list[torch.Tensor] = []
        self._saved: list[torch.Tensor] = []

    # -- before the forward pass --------------------------------------------------------
    def before(self, model: nn.Module, x: torch.Tensor) -> str | None:
        """Snapshot the buffers; the reason the batch is bad, or None."""
        self._buffers = list(model.buffers())  # running statistics and their counters
        self._saved = [b.detach().clone() for b in self._buffers]
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            n = int((~torch.isfinite(x)).sum())
            return f"the input batch holds {n} NaN/Inf value{'s' if n != 1 else ''}"
        return None

    # -- after backward -------------------------------------------------------------------
    def after(self, model: nn.Module, loss: torch.Tensor) -> str | None:
        """The reason the step must not be applied (non-finite loss/gradients/buffers), or None."""
        if not bool(torch.isfinite(loss.detach()).all()):
            return f"the loss is {float(loss.detach().float().mean())}"
        if not tensors_finite(gradients(model)):
            return "the gradients hold NaN/Inf (the loss was finite)"
        if not tensors_finite(self._buffers):
            return "the running statistics (buffers) became NaN/Inf"
        return None

    def reject(self, model: nn.Module, reason: str, where: str) -> None:
        """Undo the step's side effects (buffers, gradients); raise, or count it (``skip``)."""
        with torch.no_grad():
            for b, s in zip(self._buffers, self._saved, strict=True):
                b.copy_(s)
        for p in model.parameters():
            p.grad = None
        if self.mode == "raise":
            raise NonFiniteError(
                f"{where}: {reason}; the weights and running statistics were left as they were "
                f"before this batch. Clean the data, lower the learning rate (--lr), or pass "
                f"--on-nonfinite skip to skip and count such batches"
            )
        self.skipped.append(f"{where}: {reason}")
