"""NaN/Inf inputs and gradients never reach the weights or running statistics unnoticed."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import snnplug
from snnplug.data import DatasetBundle, load_dataset
from snnplug.engine import TrainConfig, train
from snnplug.engine.guards import NonFiniteError, NonFiniteGuard, check_gradients, tensors_finite
from snnplug.engine.seed import seed_everything

SEED, BATCH, LIMIT = 3, 32, 128  # 4 batches per epoch


def _poisoned(bundle: DatasetBundle, index: int, value: float = float("nan")) -> DatasetBundle:
    x, y = bundle.train.tensors
    x = x.clone()
    x[index, 0, 3, 4] = value
    return DatasetBundle(bundle.name, torch.utils.data.TensorDataset(x, y), bundle.test, bundle.input_shape,
                         bundle.num_classes)


def _batch_of(index: int, n: int, epoch: int = 0) -> int:
    """The 0-based batch holding sample ``index`` under the trainer's (seed, epoch) shuffle."""
    g = torch.Generator().manual_seed(SEED * 100003 + epoch)
    order = torch.cat(list(torch.utils.data.DataLoader(range(n), batch_size=BATCH, shuffle=True, generator=g)))
    return order.tolist().index(index) // BATCH


def _model(strategy, bundle):
    seed_everything(SEED)
    return strategy.build_model(bundle.input_shape, bundle.num_classes)


def _cfg(**kw):
    return TrainConfig(**{"epochs": 1, "batch_size": BATCH, "seed": SEED, "progress": False, **kw})


def _all_finite(m: nn.Module) -> bool:
    return tensors_finite(list(m.parameters()) + list(m.buffers()))


@pytest.mark.parametrize("name", ["bptt", "dsr", "noise"])
def test_one_nan_pixel_stops_training_naming_the_batch(name):
    s = snnplug.strategy(name, T=2)
    clean = load_dataset("digits", limit=LIMIT)
    bad = _poisoned(clean, 17)
    k = _batch_of(17, LIMIT)
    m = _model(s, bad)
    with pytest.raises(NonFiniteError, match=rf"epoch 1, batch {k + 1} of 4: the input batch holds 1 NaN/Inf "
                                             rf"value; the weights and running statistics were left as they were"):
        train(s, m, bad, _cfg())
    assert _all_finite(m)
    if k:  # the model is exactly the one trained on the k batches before the bad one
        ref = train(s, _model(s, clean), clean, _cfg(max_steps=k)).model
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values(), strict=True))


class _NaNGradients:
    """bptt whose loss gets a term that is 0 but has a NaN gradient (d sqrt(u)/du at u=0 times 0)
    on one chosen step: the input and the loss are finite, the gradients are not."""

    def __init__(self, at: int) -> None:
        self.inner, self.at, self.calls = snnplug.strategy("bptt", T=2), at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loss(self, model, x, y):
        loss, logits = self.inner.loss(model, x, y)
        self.calls += 1
        if self.calls == self.at:
            w = next(model.parameters())
            loss = loss + (w.sum() * 0).sqrt()
        return loss, logits


def test_nan_gradients_from_a_finite_loss_stop_training():
    b = load_dataset("digits", limit=LIMIT)
    s = _NaNGradients(at=3)
    m = _model(s.inner, b)
    with pytest.raises(NonFiniteError, match=r"epoch 1, batch 3 of 4: the gradients hold NaN/Inf \(the loss was finite\)"):
        train(s, m, b, _cfg())
    ref = train(s.inner, _model(s.inner, b), b, _cfg(max_steps=2)).model
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values(), strict=True))


def test_skip_mode_skips_and_counts_the_bad_batch():
    s = snnplug.strategy("bptt", T=2)
    bad = _poisoned(load_dataset("digits", limit=LIMIT), 17, float("inf"))
    init = copy.deepcopy(_model(s, bad).state_dict())
    res = train(s, _model(s, bad), bad, _cfg(epochs=2, on_nonfinite="skip"))
    assert [h["nonfinite_skipped"] for h in res.history] == [1, 2]  # one batch per epoch holds the Inf
    assert _all_finite(res.model)
    # it still learned from the other batches
    assert res.history[1]["train_loss"] < res.history[0]["train_loss"]
    assert not torch.equal(init["0.weight"], res.model.state_dict()["0.weight"])


def test_strategy_loss_in_a_users_loop_refuses_a_nan_batch():
    s = snnplug.strategy("bptt", T=2)
    b = load_dataset("digits", limit=64)
    m = _model(s, b)
    x, y = b.train.tensors[0][:16].clone(), b.train.tensors[1][:16]
    before = copy.deepcopy(m.state_dict())
    x[3, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"strategy 'bptt': the batch holds 1 NaN/Inf value\(s\)"):
        s.loss(m, x, y)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # BN statistics untouched
    # non-finite gradients from a finite batch: check_gradients between backward and step
    loss, _ = s.loss(m, x.nan_to_num(0.0), y)
    (loss * float("inf")).backward()
    with pytest.raises(NonFiniteError, match="non-finite gradients at step 7: the weights were not updated"):
        check_gradients(m, "step 7")


def test_bntt_running_statistics_survive_a_nan_batch():
    bn = snnplug.normalizer("bntt", 3, T=2).train()
    x = torch.randn(2, 8, 3, 4)
    bn(x)
    bn.reset()
    mean0, var0 = bn.running_mean.clone(), bn.running_var.clone()
    y = torch.randn(2, 8, 3, 4)
    y[1, 0, 0, 0] = float("nan")  # step 1, channel 0
    bn(y)
    assert torch.isfinite(bn.running_mean).all() and torch.isfinite(bn.running_var).all()
    assert bn.running_mean[1, 0] == mean0[1, 0] and bn.running_var[1, 0] == var0[1, 0]
    # every finite entry moved by torch.nn.BatchNorm's rule: (1 - m) old + m batch stat (unbiased var)
    m = bn.momentum
    exp_mean = (1 - m) * mean0 + m * y.mean(dim=(1, 3))
    exp_var = (1 - m) * var0 + m * y.var(dim=(1, 3), unbiased=True)
    ok = torch.ones(2, 3, dtype=torch.bool)
    ok[1, 0] = False
    assert torch.allclose(bn.running_mean[ok], exp_mean[ok], atol=1e-6)
    assert torch.allclose(bn.running_var[ok], exp_var[ok], atol=1e-5)


def test_guard_restores_buffers_when_a_step_is_rejected():
    bn = nn.BatchNorm1d(3)
    g = NonFiniteGuard("skip")
    x = torch.randn(5, 3)
    assert g.before(bn, x) is None
    bn(x * float("inf"))  # the forward pass poisons the running statistics
    loss = bn.weight.sum()
    loss.backward()
    reason = g.after(bn, loss)
    assert reason == "the running statistics (buffers) became NaN/Inf"
    g.reject(bn, reason, "epoch 1, batch 1 of 1")
    assert torch.equal(bn.running_mean, torch.zeros(3)) and torch.equal(bn.running_var, torch.ones(3))
    assert bn.weight.grad is None and g.skipped == ["epoch 1, batch 1 of 1: " + reason]
    with pytest.raises(ValueError, match=r"on_nonfinite must be one of \('raise', 'skip'\), got 'ignore'"):
        NonFiniteGuard("ignore")
