"""The engine's one loop and one evaluation: tensors, loaders, callbacks, anytime accuracy."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import snnplug
from snnplug.data import load_dataset
from snnplug.engine import (EvalEvery, TrainConfig, anytime_accuracy, direct_anytime, evaluate,
                            evaluate_anytime, train)


def _digits(n=192):
    b = load_dataset("digits", limit=n)
    return b, b.train.tensors


def test_a_given_loader_trains_exactly_like_the_plain_loop():
    """The engine on a user's loader = the four-line loop of the strategy docstring."""
    b, (x, y) = _digits()
    s = snnplug.strategy("bptt", T=2)
    torch.manual_seed(1)
    m1 = s.build_model(b.input_shape, b.num_classes)
    m2 = s.build_model(b.input_shape, b.num_classes)
    m2.load_state_dict(m1.state_dict())
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(5))
    opt, sched = s.make_optimizer(m1, 2, len(loader))
    for _ in range(2):
        m1.train()
        for xb, yb in loader:
            loss, _ = s.loss(m1, xb, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    loader.generator.manual_seed(5)
    res = train(s, m2, loader, TrainConfig(epochs=2, seed=None, progress=False))
    assert res.steps == 2 * len(loader) and res.history[-1]["test_acc"] == {}
    assert all(torch.equal(a, c) for a, c in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_tensors_callbacks_and_stop_at_a_target():
    b, (x, y) = _digits()
    s = snnplug.strategy("bptt", T=2)
    m = s.build_model(b.input_shape, b.num_classes)
    seen = []

    class Record:
        def on_train_start(self, st):
            seen.append(("start", st.global_step))

        def on_step(self, st):
            seen.append(("step", st.global_step, st.step_in_epoch))

        def on_train_end(self, st):
            seen.append(("end", st.global_step))

    ev = EvalEvery(2, lambda st: 1.0 if st.global_step >= 4 else 0.0, target=0.5)
    res = train(s, m, (x, y), TrainConfig(epochs=5, batch_size=64, progress=False), callbacks=[Record(), ev])
    # 3 steps per epoch; accuracy 1.0 first seen at step 4 (epoch 2, its first step): stop there
    assert [e for e in seen if e[0] == "step"] == [("step", 1, 1), ("step", 2, 2), ("step", 3, 3), ("step", 4, 1)]
    assert seen[0] == ("start", 0) and seen[-1] == ("end", 4)
    assert [p[0] for p in res.metrics["evals"]] == [2, 4] and res.metrics["evals_hit"][0] == 4
    assert [p[3] for p in res.metrics["evals"]] == [0.0, 1.0]
    assert len(res.history) == 1  # epoch 2 was interrupted: no evaluation row
    assert res.train_seconds > 0 and res.train_cpu_seconds > 0


def test_data_without_a_length_is_refused():
    s = snnplug.strategy("bptt", T=2)
    b, _ = _digits(64)
    gen = ((torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)) for _ in range(2))
    with pytest.raises(TypeError, match="without len"):
        train(s, s.build_model(b.input_shape, b.num_classes), gen, TrainConfig(progress=False))


def test_anytime_accuracy_equals_predict_at_every_t():
    """Row t of one simulation = a separate t-step prediction (mean-over-time readout)."""
    b, _ = _digits(600)
    s = snnplug.strategy("bptt", T=4, neuron="if")
    torch.manual_seed(0)
    m = s.build_model(b.input_shape, b.num_classes)
    train(s, m, b, TrainConfig(epochs=2, progress=False))
    m.eval()
    xt, yt = b.test.tensors
    curve = evaluate_anytime(s, m, (xt, yt), T=4)
    direct = [int((s.predict(m, xt, T=t).argmax(-1) == yt).sum()) / len(yt) for t in range(1, 5)]
    assert curve == pytest.approx(direct, abs=1e-12) and len(set(curve)) > 1
    assert evaluate(s, m, (xt, yt), [1, 3]) == {1: curve[0], 3: curve[2]}


def test_direct_anytime_in_slices_equals_one_call():
    from snnplug.models import mlp
    from spikingjelly.activation_based import neuron

    torch.manual_seed(0)
    snn = mlp(64, 10, hidden=(32,), node=lambda: neuron.IFNode(step_mode="m"))
    x, y = torch.rand(40, 64) * 3, torch.arange(40) % 10
    whole = anytime_accuracy(direct_anytime(snn, 9), (x, y))
    sliced = anytime_accuracy(direct_anytime(snn, 9, steps_per_call=4), (x, y))
    assert len(whole) == 9 and whole == sliced
    with pytest.raises(ValueError, match="got no data"):
        anytime_accuracy(direct_anytime(snn, 2), [])


def test_energy_first_layer_on_quantised_images_is_dense_and_later_spikes_are_events():
    """Digits are sixteenths (a grid a pooled-spike check would accept): as the first layer's
    input they are real values (dense MACs); binary input to the first layer is events."""
    from spikingjelly.activation_based import layer, neuron

    from snnplug.engine.energy import E_AC_PJ, E_MAC_PJ, measure

    fc1, fc2 = layer.Linear(4, 3, bias=False, step_mode="m"), layer.Linear(3, 2, bias=False, step_mode="m")
    with torch.no_grad():
        fc1.weight.fill_(1.0)
    net = torch.nn.Sequential(fc1, neuron.IFNode(step_mode="m"), fc2)
    x = torch.tensor([[[0.25, 0.5, 0.0, 0.0]]]).expand(3, 1, 4)  # T=3, B=1; sum 0.75 per step
    rep = measure(net, x)
    # fc1 dense: 12 MACs x 3 steps; IF: v = 0.75, 1.5 -> spike at t=2 (v reset), 0.75: one spike per neuron
    assert [(l.macs, l.rate) for l in rep.layers] == [(12, None), (6, pytest.approx(1 / 3))]
    assert rep.snn_pj == pytest.approx(12 * 3 * E_MAC_PJ + 6 * (1 / 3) * 3 * E_AC_PJ)
    assert rep.ann_pj == pytest.approx(18 * E_MAC_PJ)
    binary = measure(net, (x > 0.3).float())  # spikes as input: the first layer is event-driven
    assert binary.layers[0].rate == pytest.approx(0.25)


def test_schedules_come_from_optim_config():
    from snnplug.strategies import OptimConfig, Strategy, make_schedule

    m = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    warm = make_schedule(opt, OptimConfig(schedule="cosine-warm-restarts", restart_epochs=2), 5, 3)
    assert isinstance(warm, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts) and warm.T_0 == 6
    assert make_schedule(opt, OptimConfig(schedule="none"), 5, 3) is None

    class Typo(Strategy):
        def optim_config(self) -> OptimConfig:
            return OptimConfig(schedule="cosine_warm")

    with pytest.raises(ValueError, match="unknown schedule 'cosine_warm'; choose one of"):
        Typo().make_optimizer(m, 1, 1)


def test_the_input_layout_is_declared_not_set_from_outside():
    """Event frames [B, T, ...] need a strategy built with frames=True; the engine never flips it."""
    from torch.utils.data import TensorDataset

    from snnplug.data import DatasetBundle
    from snnplug.errors import ShapeError

    frames = TensorDataset(torch.rand(8, 3, 2, 4, 4), torch.arange(8) % 2)  # 3 frames per sample
    bundle = DatasetBundle("events", frames, frames, (2, 4, 4), 2, frames=True)
    s = snnplug.strategy("bptt", T=3)
    with pytest.raises(ShapeError, match=r"yields event frames \[B, T, \.\.\.\]; build the strategy with frames=True"):
        train(s, s.build_model((2, 4, 4), 2), bundle, TrainConfig(progress=False))
    assert s.frames is False
    framed = snnplug.strategy("bptt", T=3, frames=True)
    res = train(framed, framed.build_model((2, 4, 4), 2), bundle, TrainConfig(batch_size=4, progress=False))
    assert res.steps == 2 and set(res.history[-1]["test_acc"]) == {"3"}
