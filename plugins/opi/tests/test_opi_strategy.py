"""ClipReLU and the ``opi-ann`` strategy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snnplug
from snnplug.errors import UnsupportedModuleError
from snnplug_opi import ClipReLU
from snnplug_opi.strategy import OPIANNStrategy


def test_clip_relu_forward_and_gradients() -> None:
    m = ClipReLU(2.0)
    x = torch.tensor([-1.0, 0.0, 0.5, 1.75, 2.0, 2.5, 8.0], requires_grad=True)
    y = m(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.0, 0.5, 1.75, 2.0, 2.0, 2.0]))
    y.sum().backward()
    # d/dλ = number of elements strictly above λ; the tie at x = λ splits the gradient (torch.minimum)
    assert m.upper.grad.item() == pytest.approx(2.5)
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.5, 0.0, 0.0]


def test_clip_relu_projection_keeps_lambda_positive_and_gradient_alive() -> None:
    m = ClipReLU(1.0, min_upper=0.125)
    m.upper.data.fill_(-3.0)  # as an aggressive SGD step could leave it
    x = torch.tensor([0.0625, 0.5, 1.0])
    y = m(x)  # training mode: projected first
    assert m.upper.item() == 0.125
    assert torch.equal(y.detach(), torch.tensor([0.0625, 0.125, 0.125]))
    y.sum().backward()
    assert m.upper.grad.item() == 2.0  # not blocked at the bound (a clamp in the graph would give 0)
    m.eval()
    m.upper.data.fill_(-1.0)
    assert torch.equal(m(x), torch.tensor([0.0625, 0.125, 0.125]))
    assert m.threshold == 0.125
    with pytest.raises(ValueError):
        ClipReLU(0.0)


def test_prepare_swaps_relu_and_max_pool_on_a_copy() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=2, padding=1),
                          nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4), nn.ReLU()),
                          nn.AdaptiveMaxPool1d(2))
    s = snnplug.strategy("opi-ann", init_upper=6.0)
    prepared = s.prepare(model)
    assert isinstance(model[1], nn.ReLU) and isinstance(model[2], nn.MaxPool2d)  # original untouched
    assert isinstance(prepared[1], ClipReLU) and prepared[1].upper.item() == 6.0
    assert isinstance(prepared[3][2], ClipReLU)
    pool = prepared[2]
    assert isinstance(pool, nn.AvgPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (2, 2, 1)
    assert isinstance(prepared[4], nn.AdaptiveAvgPool1d) and prepared[4].output_size == 2
    x = torch.rand(3, 1, 4, 4)
    assert prepared(x).shape == model(x).shape
    with pytest.raises(UnsupportedModuleError, match="dilation"):
        s.prepare(nn.Sequential(nn.MaxPool2d(2, dilation=2)))


def test_build_model_and_param_groups() -> None:
    s = snnplug.strategy("opi-ann")
    model = s.build_model((1, 8, 8), 5)
    clips = [m for m in model.modules() if isinstance(m, ClipReLU)]
    assert len(clips) == 3 and all(c.upper.item() == 4.0 for c in clips)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 5)
    assert s.build_model((10,), 3)(torch.rand(2, 10)).shape == (2, 3)
    opt, sched = s.make_optimizer(model, epochs=2, steps_per_epoch=3)
    assert isinstance(opt, torch.optim.SGD) and sched is not None
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert all(wd[id(c.upper)] == 1e-3 for c in clips)
    assert wd[id(model[0].weight)] == 5e-4
    assert len(wd) == sum(1 for p in model.parameters() if p.requires_grad)


def test_loss_predict_and_snn_predict() -> None:
    torch.manual_seed(0)
    s = snnplug.strategy("opi-ann", T=8)
    model = s.build_model((1, 8, 8), 4)
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 4, (6,))
    loss, logits = s.loss(model, x, y)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    model.eval()
    torch.testing.assert_close(s.ann_logits(model, x), model(x))
    snn = s.to_snn(model)
    torch.testing.assert_close(s.predict(model, x), snn.predict(x, 8))  # default: the strategy's T
    torch.testing.assert_close(s.predict(model, x, T=5), snn.predict(x, 5))
    assert s.predict_anytime(model, x, T=5).shape == (5, 6, 4)
    assert s.to_snn(model) is snn  # cached while the weights are unchanged
    opt, _ = s.make_optimizer(model, 1, 1)
    model.train()
    loss, _ = s.loss(model, x, y)
    loss.backward()
    opt.step()
    model.eval()
    assert s.to_snn(model) is not snn  # re-converted after an optimizer step


def test_config_round_trip_and_validation() -> None:
    s = snnplug.strategy("opi-ann", T=12, init_upper=5.0, upper_weight_decay=5e-4, v_init=0.25)
    assert OPIANNStrategy(**s.config()).config() == s.config()
    with pytest.raises(ValueError):
        snnplug.strategy("opi-ann", init_upper=-1.0)
    with pytest.raises(ValueError):
        snnplug.strategy("opi-ann", v_init=1.5)


def test_short_training_moves_lambda_and_keeps_it_positive() -> None:
    torch.manual_seed(0)
    s = snnplug.strategy("opi-ann", init_upper=1 / 64, min_upper=1 / 128)
    model = s.build_model((1, 8, 8), 3)
    opt, _ = s.make_optimizer(model, 1, 5, lr=0.5)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,))
    for _ in range(5):
        loss, _ = s.loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model(x)  # the next training forward projects
        uppers = [m.upper.item() for m in model.modules() if isinstance(m, ClipReLU)]
        assert min(uppers) >= 1 / 128
    assert uppers != [1 / 64] * 3


def test_inference_model_and_report_for_snnplug_run():
    import snnplug

    torch.manual_seed(0)
    s = snnplug.strategy("opi-ann", T=8)
    model = s.build_model((1, 8, 8), 10).eval()
    snn = s.inference_model(model)
    assert any(getattr(m, "snnplug_spiking", False) for m in snn.modules())
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 10
    curves = s.report(model, x, y)["anytime accuracy"]
    assert set(curves) == {"v(0) = θ/2", "v(0) = 0", "ANN"} and all(len(v) == 8 for v in curves.values())
    # the report's θ/2 curve is the strategy's own anytime prediction
    expected = (s.predict_anytime(model, x, 8).argmax(-1) == y).float().mean(1).tolist()
    assert curves["v(0) = θ/2"] == expected


def test_opi_neuron_built_for_T_refuses_longer_sequences():
    import snnplug
    from snnplug.errors import TimeStepError

    n = snnplug.neuron("opi-if", T=4)
    assert n(torch.rand(3, 2, 5)).shape == (3, 2, 5)  # fewer steps: anytime read-out
    with pytest.raises(TimeStepError, match="built for T=4 but got a sequence of 5 steps"):
        n(torch.rand(5, 2, 5))


def test_spike_metrics_see_the_converted_neurons():
    import snnplug
    from snnplug.engine.energy import record_energy

    torch.manual_seed(0)
    s = snnplug.strategy("opi-ann", T=8)
    model = s.build_model((1, 8, 8), 10).eval()
    x = torch.rand(4, 1, 8, 8)
    snn = s.inference_model(model)
    with torch.no_grad(), record_energy(snn, batch=4, steps=8) as rep:
        s.predict(model, x, T=8)
    rates = rep.spike_rates
    assert len(rates) == len(snn.neurons()) and all(0.0 <= r <= 1.0 for r in rates.values())
    first = snn.neurons()[0]
    # the first layer's rate equals its own spike count over the simulation (independent recount)
    counts = []
    hook = first.register_forward_hook(lambda m, i, o: counts.append(o.detach()))
    with torch.no_grad():
        s.predict(model, x, T=8)
    hook.remove()
    assert rates["body.2.node"] == pytest.approx(float(counts[0].mean())) and rates["body.2.node"] > 0
