"""The one evaluation: accuracy after every step ``t = 1..T`` from one simulation per batch.

An SNN's prediction after ``t`` steps is the readout of the first ``t`` outputs, so a single
``T``-step run gives the whole accuracy-vs-latency curve. Everything that reports accuracy
(the trainer's per-epoch figures, ``snnplug evaluate``/``run``/``convert``, the benchmarks)
goes through :func:`anytime_accuracy`:

* :func:`evaluate_anytime` — a strategy and its model (``strategy.predict_anytime``);
* :func:`direct_anytime` — any multi-step SNN ``[T, B, ...] -> [T, B, C]`` fed direct input
  (a converted network), read out as the running mean;
* :func:`evaluate` — accuracy at a few T, read off the same curve.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from snnplug.checks import any_length, as_steps
from snnplug.errors import ShapeError

Anytime = Callable[[torch.Tensor], torch.Tensor]  # x [B, ...] -> logits after every step [T, B, C]


def batches(data: Any, batch_size: int = 256) -> Iterable[Any]:
    """``data`` as ``(x, y)`` batches: a ``(x, y)`` pair of tensors is cut into ordered
    batches of ``batch_size``; anything else (a DataLoader, a list of batches) is used as is."""
    if isinstance(data, tuple) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y = data
        return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]
    return data


@torch.no_grad()
def anytime_accuracy(anytime: Anytime, data: Any, *, device: str | torch.device | None = None) -> list[float]:
    """Accuracy after every step (a list of T floats): ``anytime(x)`` gives ``[T, B, C]`` logits
    of one simulation; ``data`` yields ``(x, y, ...)`` batches or is an ``(x, y)`` tensor pair."""
    correct: torch.Tensor | None = None
    total = 0
    for x, y, *_ in batches(data):
        if device is not None:
            x, y = x.to(device), y.to(device)
        out = anytime(x)
        if out.dim() != 3 or out.shape[1] != len(y):
            raise ShapeError(f"expected logits [T, B={len(y)}, C] after every step, got {tuple(out.shape)}")
        hits = (out.argmax(-1) == y.view(1, -1)).sum(1).cpu()
        if correct is None:
            correct = hits
        elif hits.shape != correct.shape:
            raise ShapeError(f"batches simulated {len(hits)} and {len(correct)} steps; use one T")
        else:
            correct += hits
        total += len(y)
    if correct is None or total == 0:
        raise ValueError("anytime_accuracy got no data")
    return (correct.double() / total).tolist()


def evaluate_anytime(strategy: Any, model: nn.Module, data: Any, T: int | None = None, *,
                     device: str | torch.device | None = None) -> list[float]:
    """Accuracy of ``model`` under ``strategy`` after every step ``t = 1..T`` (default: the
    strategy's ``inference_T``), one simulation per batch; the model is evaluated in eval mode
    and returned to the mode it was in."""
    steps = strategy.inference_T if T is None else as_steps("T", T)
    was_training = model.training
    model.eval()
    try:
        return anytime_accuracy(lambda x: strategy.predict_anytime(model, x, T=steps), data, device=device)
    finally:
        model.train(was_training)


def evaluate(strategy: Any, model: nn.Module, data: Any, Ts: Sequence[int] | None = None,
             device: str | torch.device | None = "cpu") -> dict[int, float]:
    """Accuracy at each T in ``Ts`` (default: the strategy's ``inference_T``), all read off one
    ``max(Ts)``-step simulation (:func:`evaluate_anytime`)."""
    Ts = [as_steps("T", t) for t in Ts] if Ts else [strategy.inference_T]
    curve = evaluate_anytime(strategy, model, data, max(Ts), device=device)
    return {t: curve[t - 1] for t in Ts}


def direct_anytime(snn: nn.Module, T: int, *, steps_per_call: int | None = None) -> Anytime:
    """``x -> [T, B, C]`` running-mean logits of a multi-step ``snn`` fed direct input
    (``x_t = x``), reset before and after. ``steps_per_call`` feeds the simulation in slices of
    that many steps (state carries over, so the result is the same) to bound memory."""
    from snnplug.backends.spikingjelly import reset
    from snnplug.data.encoders import direct

    T = as_steps("T", T)
    chunk = T if steps_per_call is None else as_steps("steps_per_call", steps_per_call)

    def run(x: torch.Tensor) -> torch.Tensor:
        reset(snn)
        with any_length(snn):  # the caller chose T (and the slices)
            out = torch.cat([snn(direct(x, min(chunk, T - t0)).contiguous()) for t0 in range(0, T, chunk)])
        reset(snn)
        if out.dim() != 3 or out.shape[0] != T:
            raise ShapeError(f"expected [T={T}, B, C] from the SNN, got {tuple(out.shape)}")
        return running_mean(out)

    return run


def running_mean(out_seq: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...] -> [T, B, ...]``: row ``t-1`` is the mean of the outputs of steps ``1..t``."""
    t = torch.arange(1, out_seq.shape[0] + 1, device=out_seq.device, dtype=out_seq.dtype)
    return out_seq.cumsum(0) / t.view(-1, *([1] * (out_seq.dim() - 1)))
