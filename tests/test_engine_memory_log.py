"""The engine's allocator-peak callback on CPU and its per-epoch lines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnplug.engine import LogEpochs, PeakMemory, TrainConfig, train
from snnplug.strategies import Strategy


class _Plain(Strategy):
    """An ANN trained with SGD (no optimizer state): logits = model(x)."""

    name = "plain"

    def loss(self, model, x, y):
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    def make_optimizer(self, model, epochs, steps_per_epoch, lr=None):
        return torch.optim.SGD(model.parameters(), lr=0.01), None

    def predict_anytime(self, model, x, T=None):
        return model(x).unsqueeze(0)

    @property
    def inference_T(self):
        return 1


def _peak_mb(hidden: int, batch: int = 32) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    x, y = torch.rand(4 * batch, 64), torch.arange(4 * batch) % 10
    res = train(_Plain(T=1), model, (x, y), TrainConfig(epochs=1, batch_size=batch, progress=False),
                callbacks=[PeakMemory(cpu_steps=2)])
    assert res.metrics["peak_memory_steps"] == 2
    return res.peak_memory_mb


def test_cpu_allocator_peak_counts_the_steps_activations_and_gradients():
    hidden, batch = 20000, 32
    peak = _peak_mb(hidden, batch) * 2 ** 20
    acts = batch * hidden * 4  # the first layer's output, kept for backward (and its ReLU, in place or not)
    grads = (64 * hidden + hidden * 10) * 4  # weight gradients, allocated by the first backward
    assert peak >= acts + grads
    assert peak <= 4 * (2 * acts + 2 * grads)  # the step, not the process (torch alone is hundreds of MB)
    small = _peak_mb(hidden // 10, batch) * 2 ** 20
    assert small < peak / 5  # scales with the layer


def test_no_peak_memory_callback_means_no_figure():
    model = nn.Linear(8, 3)
    res = train(_Plain(T=1), model, (torch.rand(16, 8), torch.arange(16) % 3),
                TrainConfig(epochs=1, batch_size=8, progress=False))
    assert res.peak_memory_mb is None


def test_peak_memory_rejects_a_bad_step_count():
    with pytest.raises(TypeError, match="cpu_steps must be a positive int, got 0"):
        PeakMemory(cpu_steps=0)


def test_epoch_lines_give_accuracy_in_percent():
    lines = []
    model = nn.Linear(8, 3)
    x, y = torch.rand(16, 8), torch.arange(16) % 3
    train(_Plain(T=1), model, (x, y), TrainConfig(epochs=2, batch_size=8, progress=False), test=(x, y),
          callbacks=[LogEpochs(lines.append)])
    assert len(lines) == 2 and lines[1].startswith("plain epoch 2/2: loss ")
    acc = float(lines[1].split("train acc ")[1].split("%")[0])
    assert 0.0 <= acc <= 100.0 and "test acc T=1: " in lines[1] and lines[1].endswith(" s")


class _FailsAtStep2(_Plain):
    """Raises inside the second training step, while the profiler still measures."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def loss(self, model, x, y):
        self.calls += 1
        if self.calls == 2:
            raise ValueError("broken batch")
        return super().loss(model, x, y)


def test_training_that_raises_leaves_no_profiler_running():
    model = nn.Linear(8, 3)
    with pytest.raises(ValueError, match="broken batch"):
        train(_FailsAtStep2(T=1), model, (torch.rand(32, 8), torch.arange(32) % 3),
              TrainConfig(epochs=1, batch_size=8, progress=False), callbacks=[PeakMemory(cpu_steps=3)])
    assert not torch.autograd.profiler._is_profiler_enabled
    # and a new measurement can start at once
    res = train(_Plain(T=1), model, (torch.rand(16, 8), torch.arange(16) % 3),
                TrainConfig(epochs=1, batch_size=8, progress=False), callbacks=[PeakMemory(cpu_steps=2)])
    assert res.peak_memory_mb is not None
