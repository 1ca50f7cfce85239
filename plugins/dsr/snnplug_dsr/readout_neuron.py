"""A user's own neuron at the readout, in DSR's representation pass (a mixed graph).

``snnplug.apply(net, neuron="dsr", readout="keep")`` (the default) leaves the readout neurons
(the spiking layers after the last weight layer, :mod:`snnplug.readout`) as the user wrote them,
e.g. SpikingJelly's ``IFNode`` with its surrogate gradient. Between them and the output there are
only time-linear operations (checked by :mod:`.graph`), so the representation pass handles them
as follows:

* **Simulation**: the neuron runs as itself, chunk after chunk (its membrane state carries over
  between chunks); its input sequence ``x_t`` (``T x`` the readout's size, e.g. ``T*B*10``
  numbers) and the time sum of its output are recorded.
* **Representation value**: the measured rate ``mean_t out_t`` (so the logits equal the
  simulated readout).
* **Gradient**: the gradient ``g`` reaching the rate means ``dL/dout_t = g / T`` at every step
  (the operations after it are time-linear). The neuron's own per-step backward (its surrogate)
  is run on the recorded ``x_t`` with that output gradient, giving ``dL/dx_t``, and the
  representation input ``mean_t x_t`` receives ``sum_t dL/dx_t`` (what a time-linear input
  ``x_t = W z_t + b`` passes on when its gradient is the same at every step). Parameters of the
  neuron (e.g. ``ParametricLIFNode``'s ``w``) get their per-step gradients.

Exactness: the bias of the layer feeding the readout and everything below the DSR neurons that
feed it get the per-step gradient exactly (the DSR neurons below sum their output gradient over
time anyway: ``G = sum_t dL/dout_t = W^T sum_t dL/dx_t``). The weight of that layer gets
``(sum_t dL/dx_t) mean_t(z_t)^T`` instead of ``sum_t dL/dx_t z_t^T``: equal when the readout's
per-step gradient or its input spikes are constant in time, otherwise the same kind of
approximation as DSR's own (the per-step gradient replaced by its time mean).
"""

from __future__ import annotations

import torch
from torch import nn


class ReadoutRecord:
    """The kept readout neuron's input sequence and output time sum over one simulation."""

    def __init__(self, T: int) -> None:
        self.T = T
        self.inputs: list[torch.Tensor] = []
        self.sum_out: torch.Tensor | None = None
        self.steps = 0

    def run(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Simulate the next ``x.shape[0]`` steps with the neuron itself; record them."""
        y = m(x)
        self.inputs.append(x.detach().clone())
        s = y.sum(0)
        self.sum_out = s if self.sum_out is None else self.sum_out + s
        self.steps += x.shape[0]
        return y


def _reset(m: nn.Module) -> None:
    reset = getattr(m, "reset", None)
    if callable(reset):
        reset()


class ReadoutReplay(torch.autograd.Function):
    """Value: the measured rate; backward: the neuron's per-step backward on the recorded inputs
    with ``g / T`` at every step, summed over time (module docstring)."""

    @staticmethod
    def forward(ctx, x_rep, rec: ReadoutRecord, m: nn.Module):  # type: ignore[override]
        if rec.steps != rec.T or rec.sum_out is None:
            from snnplug.errors import SnnplugError

            raise SnnplugError(f"readout neuron replayed after {rec.steps} of {rec.T} steps (internal)")
        ctx.rec, ctx.m = rec, m
        return (rec.sum_out / rec.T).to(x_rep.dtype).unsqueeze(0)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        rec: ReadoutRecord = ctx.rec
        m: nn.Module = ctx.m
        x_seq = torch.cat(rec.inputs).to(g.dtype).requires_grad_()
        params = [p for p in m.parameters() if p.requires_grad]
        _reset(m)
        with torch.enable_grad():
            y = m(x_seq)
            torch.autograd.backward(y, (g / rec.T).expand_as(y).to(y.dtype), inputs=[x_seq, *params])
        _reset(m)
        return x_seq.grad.sum(0, keepdim=True), None, None
