"""The converted SNN: the ANN's fx graph run on time-folded tensors, with IF neurons in place of
the activations.

``OPISpikingNet`` maps ``[T, B, ...] -> [T, B, C]`` (multi-step, SpikingJelly ``step_mode='m'``)
or ``[B, ...] -> [B, C]`` one step at a time (``step_mode='s'``, state kept between calls).
Stateless layers see ``[T·B, ...]`` and so compute each step exactly as the ANN would; each
:class:`SpikingActivation` unfolds time for its :class:`~snnplug_opi.neuron.OPIIFNode` and emits
``θ·s_t``. ``spikingjelly.activation_based.functional.reset_net(net)`` resets every neuron to
``v(0) = v_init·θ``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from snnplug.backends.spikingjelly import sj
from snnplug.checks import any_length, as_steps, check_length, check_sequence
from snnplug.errors import ShapeError, TimeStepError
from snnplug_opi.neuron import OPIIFNode

StepModule = sj().base.StepModule


class SpikingActivation(nn.Module):
    """``x [T·B, ...] -> θ·s [T·B, ...]`` through an :class:`OPIIFNode` over ``steps`` steps.

    ``steps`` is set by the enclosing :class:`OPISpikingNet` before each forward.
    """

    def __init__(self, node: OPIIFNode, scale: float) -> None:
        super().__init__()
        self.node = node
        self.scale = float(scale)
        self.steps = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, T = x.shape[0], self.steps
        if n % T:
            raise TimeStepError(f"a folded batch of {n} rows cannot hold {T} time steps")
        x_seq = x.reshape(T, n // T, *x.shape[1:])
        # through __call__ in multi-step mode, so forward hooks (spike metrics) see the neuron
        s = self.node(x_seq) if self.node.step_mode == "m" else self.node.multi_step_forward(x_seq)
        return (s * self.scale).reshape(x.shape)

    @property
    def spike_amplitude(self) -> float:
        """The amplitude of the spikes this module outputs (θ), for the energy count's event rate."""
        return self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"


class OPISpikingNet(nn.Module, StepModule):
    """A converted OPI network (see the module docstring). ``T`` is the default number of steps
    for :meth:`predict` / :meth:`predict_anytime`; ``forward`` runs however many steps it gets.

    ``info`` records the conversion: per-activation thresholds, which were calibrated, folded BNs.
    """

    def __init__(self, body: fx.GraphModule, T: int, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.body = body
        self.T = as_steps("T", T)
        self.info = dict(info or {})
        self._step_mode = "m"
        self.strict_T = True  # sequences must have T steps (snnplug.checks.any_length relaxes it)
        self._acts = [m for m in body.modules() if isinstance(m, SpikingActivation)]

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.info.get("thresholds", {}))

    def neurons(self) -> list[OPIIFNode]:
        return [a.node for a in self._acts]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            check_sequence(x, who="OPISpikingNet (multi-step)", min_rank=3)
            rank = self.info.get("input_rank")
            if rank is not None and x.dim() != rank + 1:
                raise ShapeError(
                    f"OPISpikingNet expects a time-major input of rank {rank + 1} ([T, B, ...], each "
                    f"step a rank-{rank} batch), got shape {tuple(x.shape)}; for a static batch "
                    f"[B, ...] use net.predict(x, T) or snnplug.data.encoders.direct(x, T)"
                )
            check_length("OPISpikingNet (multi-step)", x, self.T, strict=self.strict_T)
            T, B = x.shape[0], x.shape[1]
            flat = x.reshape(T * B, *x.shape[2:])
        else:
            rank = self.info.get("input_rank")
            if not torch.is_tensor(x) or x.dim() < 2 or (rank is not None and x.dim() != rank):
                raise ShapeError(f"OPISpikingNet in single-step mode expects [B, ...], got "
                                 f"{tuple(getattr(x, 'shape', ()))}")
            T, B, flat = 1, x.shape[0], x
        for a in self._acts:
            a.steps = T
        y = self.body(flat)
        if not torch.is_tensor(y):
            raise TypeError(f"the converted graph returned {type(y).__name__}; OPI converts models "
                            f"with a single tensor output")
        return y.reshape(T, B, *y.shape[1:]) if self.step_mode == "m" else y

    # -- evaluation helpers --------------------------------------------------------------
    @torch.no_grad()
    def predict_anytime(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits after every step ``t = 1..T`` from one simulation of a static batch ``x [B, ...]``
        with direct input: ``[T, B, C]``, row ``t-1`` = mean of the outputs of steps 1..t."""
        from snnplug.backends.spikingjelly import reset
        from snnplug.data.encoders import direct
        from snnplug.engine.evaluate import running_mean

        steps = self.T if T is None else as_steps("T", T)
        if self.step_mode != "m":
            raise ValueError("predict_anytime needs step_mode='m' (set_step_mode(net, 'm'))")
        reset(self)
        with any_length(self):  # the caller chose the steps
            out = self(direct(x, steps))
        reset(self)
        return running_mean(out)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """Logits ``[B, C]``: mean output over ``T`` steps of direct input."""
        return self.predict_anytime(x, T)[-1]
