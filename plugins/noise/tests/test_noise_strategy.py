"""Strategy ``noise`` and converter ``noise-multistep``: model, loss, inference, conversion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnplug.errors import ShapeError, TimeStepError, UnsupportedModuleError
from snnplug.registry import get_registry
from snnplug_noise.control import noisy_nodes
from snnplug_noise.convert import NoiseSNN
from snnplug_noise.neuron import NoisyLIFNode
from snnplug_noise.strategy import NoiseStrategy


def _strategy(**kw) -> NoiseStrategy:
    return get_registry().get("strategy", "noise").factory(**kw)


def _convert(model: nn.Module, **kw) -> NoiseSNN:
    return get_registry().get("converter", "noise-multistep").factory(model, **kw)


def test_registrations_have_docs_and_paper() -> None:
    reg = get_registry()
    for family, name in [("neuron", "noise-lif"), ("strategy", "noise"), ("converter", "noise-multistep")]:
        rec = reg.get(family, name)
        assert "Jiang" in rec.paper and "noise" in rec.paper
        assert "N_noise" in rec.doc or "N(A)" in rec.doc
    neuron = reg.get("neuron", "noise-lif").factory(T=4)
    out = neuron(torch.rand(4, 2, 3))
    assert out.shape == (4, 2, 3) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert getattr(neuron, "snnplug_spiking", False)


def test_build_model_is_ap2_512fc_10fc() -> None:
    m = _strategy().build_model((1, 28, 28), 10)
    kinds = [type(l).__name__ for l in m]
    assert kinds == ["AvgPool2d", "Flatten", "Linear", "NoisyLIFNode", "Linear", "NoisyLIFNode"]
    assert (m[2].in_features, m[2].out_features, m[4].out_features) == (196, 512, 10)
    assert m[0].kernel_size == 2 and m[0].stride == 2
    out = m(torch.rand(3, 5, 1, 28, 28))
    assert out.shape == (3, 5, 10)
    digits = _strategy(hidden=32).build_model((1, 8, 8), 10)
    assert digits[2].in_features == 16 and digits[2].out_features == 32
    flat = _strategy().build_model((20,), 4)
    assert type(flat[0]).__name__ == "Flatten" and flat[1].in_features == 20
    with pytest.raises(ShapeError):
        _strategy().build_model((3, 4), 10)


def test_loss_is_mse_on_one_hot_rates_with_fresh_noise() -> None:
    s = _strategy()
    m = s.build_model((1, 8, 8), 10)
    x, y = torch.rand(16, 1, 8, 8) * 4, torch.arange(16) % 10
    torch.manual_seed(0)
    loss, rate = s.loss(m, x, y)
    assert rate.shape == (16, 10) and set(rate.unique().tolist()) <= {0.0, 1.0}  # T = 1: spikes
    expected = ((rate - F.one_hot(y, 10).float()) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    torch.manual_seed(0)
    again, rate2 = s.loss(m, x, y)
    assert torch.equal(rate, rate2)  # the global RNG drives training noise
    rates = torch.stack([s.loss(m, x, y)[1] for _ in range(4)])
    assert not all(torch.equal(rates[0], r) for r in rates[1:])  # fresh noise every iteration
    assert all(n.stage == 1 and n.seed is None for n in noisy_nodes(m))
    with pytest.raises(ValueError, match="labels"):
        s.loss(m, x, torch.full((16,), 10))
    with pytest.raises(ShapeError, match="labels"):
        s.loss(m, x, y.float())


def test_predict_is_seeded_stage3_and_restores_the_model() -> None:
    s = _strategy(seed=3)
    m = s.build_model((1, 8, 8), 10)
    x = torch.rand(8, 1, 8, 8) * 4
    a, b = s.predict(m, x, T=5), s.predict(m, x, T=5)
    assert torch.equal(a, b) and a.shape == (8, 10)
    assert all(n.stage == 1 and n.seed is None for n in noisy_nodes(m))
    anytime = s.predict_anytime(m, x, T=5)
    assert anytime.shape == (5, 8, 10)
    torch.testing.assert_close(anytime[-1], a)
    torch.testing.assert_close(anytime[2], s.predict(m, x, T=3))  # causal: a prefix of the run
    assert torch.equal(s.predict(m, x), s.predict(m, x, T=10))  # eval_T default 10
    stage2 = _strategy(seed=3, eval_stage=2)
    assert torch.equal(stage2.predict(m, x, T=5), _strategy(seed=3, eval_stage=3, alpha=float("inf")).predict(m, x, T=5))


def test_optimizer_is_adam_with_warm_restarts() -> None:
    s = _strategy()
    m = s.build_model((1, 8, 8), 10)
    opt, sched = s.make_optimizer(m, epochs=3, steps_per_epoch=7)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts) and sched.T_0 == 700
    opt2, _ = s.make_optimizer(m, 3, 7, lr=1e-3)
    assert opt2.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_user_models_get_adam_1e_3_unless_lr_is_given() -> None:
    from spikingjelly.activation_based import neuron

    user = _strategy().prepare(nn.Sequential(nn.Flatten(), nn.Linear(16, 10), neuron.IFNode(step_mode="m")))
    opt, _ = _strategy().make_optimizer(user, 1, 5)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    opt2, _ = _strategy(lr=2e-4).make_optimizer(user, 1, 5)
    assert opt2.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert _strategy().optim_config().lr == pytest.approx(1e-4)  # the paper's, as the trainer reads it


def test_config_rebuilds_the_strategy() -> None:
    s = _strategy(noise="uniform", lr=1e-3, alpha=8.0, hidden=64, seed=5)
    assert NoiseStrategy(**s.config()).config() == s.config()
    assert s.build_model((1, 8, 8), 10)[3].spec.kind == "uniform"
    with pytest.raises(ValueError, match="alpha >= 2"):
        _strategy(alpha=1.0)
    with pytest.raises(ValueError, match="Gaussian noise only"):
        _strategy(noise="uniform", noise_std=0.2)


def test_prepare_replaces_spikingjelly_neurons() -> None:
    from spikingjelly.activation_based import layer, neuron

    net = nn.Sequential(layer.Linear(6, 5), neuron.LIFNode(step_mode="m"), layer.Linear(5, 3),
                        neuron.IFNode(step_mode="m"))
    s = _strategy()
    prepared = s.prepare(net)
    assert [type(l).__name__ for l in prepared] == ["Linear", "NoisyLIFNode", "Linear", "NoisyLIFNode"]
    assert s.prepare(prepared) is prepared
    with pytest.raises(UnsupportedModuleError, match="prepare"):
        s.loss(net, torch.rand(2, 6), torch.tensor([0, 1]))


def test_convert_stage3_copies_freezes_and_seeds() -> None:
    s = _strategy()
    m = s.build_model((1, 8, 8), 10)
    snn = _convert(m, T=6, stage=3, seed=4)
    assert isinstance(snn, NoiseSNN) and snn.T == 6
    nodes = noisy_nodes(snn)
    assert [n.stage for n in nodes] == [3, 3] and [n.seed for n in nodes] == [4, 5]
    assert all(n.stage == 1 for n in noisy_nodes(m))  # the trained model is untouched
    assert all(not p.requires_grad for p in snn.parameters())
    for k, v in m.state_dict().items():
        assert torch.equal(snn.net.state_dict()[k], v)
    x = torch.rand(6, 4, 1, 8, 8) * 4
    out = snn(x)
    assert out.shape == (6, 4, 10) and torch.equal(out, snn(x))  # reproducible
    assert torch.equal(snn(x[:3]), out[:3])  # shorter runs are prefixes
    with pytest.raises(TimeStepError):
        snn(torch.rand(7, 4, 1, 8, 8))
    with pytest.raises(ShapeError):
        snn(torch.rand(8, 64))
    # stage 3 at alpha = inf is stage 2, through the converter
    assert torch.equal(_convert(m, T=6, stage=2, seed=4)(x), _convert(m, T=6, alpha=float("inf"), seed=4)(x))


def test_convert_errors_and_checkpoint_round_trip() -> None:
    from spikingjelly.activation_based import layer, neuron

    plain = nn.Sequential(layer.Linear(4, 2), neuron.LIFNode(step_mode="m"))
    with pytest.raises(UnsupportedModuleError, match="noise-lif"):
        _convert(plain)
    s = _strategy()
    m = s.build_model((1, 8, 8), 10)
    with pytest.raises(ValueError, match="stage"):
        _convert(m, stage=1)
    with pytest.raises(TypeError, match="seed"):
        _convert(m, seed=None)
    # what the CLI does: rebuild from the strategy config, load weights, convert (with a loader)
    rebuilt = NoiseStrategy(**s.config()).build_model((1, 8, 8), 10)
    rebuilt.load_state_dict(m.state_dict())
    x = torch.rand(10, 2, 1, 8, 8)
    a = _convert(rebuilt, T=10, calibration=[(x[0], torch.zeros(2))])(x)
    b = _convert(m, T=10)(x)
    assert torch.equal(a, b)
    assert torch.equal(_convert(_convert(m, T=10), T=10)(x), b)  # re-converting a NoiseSNN


def test_apply_noise_lif_in_a_spikingjelly_script() -> None:
    import snnplug
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(layer.Flatten(step_mode="m"), layer.Linear(64, 32, step_mode="m"),
                        neuron.LIFNode(tau=2.0, step_mode="m"), layer.Linear(32, 10, step_mode="m"),
                        neuron.LIFNode(tau=2.0, step_mode="m"))
    net = snnplug.apply(net, neuron="noise-lif", T=1, readout="replace")  # as docs/noise.md
    assert sum(isinstance(l, NoisyLIFNode) for l in net) == 2
    functional.reset_net(net)
    assert net(torch.rand(1, 3, 1, 8, 8)).shape == (1, 3, 10)
    functional.reset_net(net)
    with pytest.raises(TimeStepError, match="T=1"):
        net(torch.rand(2, 3, 1, 8, 8))  # built for T=1
    s = _strategy()
    assert s.predict(net, torch.rand(3, 1, 8, 8), T=5).shape == (3, 10)  # inference lifts the limit
    assert all(n.T == 1 for n in noisy_nodes(net))
    snn = _convert(net, T=6)
    assert all(n.T == 6 for n in noisy_nodes(snn))


def test_noise_statistics_per_layer() -> None:
    """Every spiking layer adds its own noise of the configured distribution (eq. 6) in
    training; in stage 3 the per-layer noise keeps mean 0.5 and the range [0, 1] (eq. 7)."""
    s = _strategy(hidden=10, seed=2)
    m = s.build_model((1, 8, 8), 10)  # hidden 10 = output 10: equal shapes, independent streams
    nodes = noisy_nodes(m)
    for n in nodes:
        n.record_noise = True
    x, y = torch.rand(2048, 1, 8, 8) * 2, torch.arange(2048) % 10
    s.loss(m, x, y)
    first = [n.last_noise.clone() for n in nodes]
    # std of N(0.5, 1/6) clipped at +-3 sigma: sigma^2 (1 - 2Q(3) - 2*3 phi(3) + 2*9 Q(3))
    q, phi = 0.5 * math.erfc(3 / math.sqrt(2)), math.exp(-4.5) / math.sqrt(2 * math.pi)
    sd = math.sqrt(1 - 2 * q - 6 * phi + 18 * q) / 6
    for xi in first:
        assert xi.shape == (1, 2048, 10)
        assert float(xi.min()) >= 0.0 and float(xi.max()) <= 1.0
        assert float(xi.mean()) == pytest.approx(0.5, abs=0.005)
        assert float(xi.std()) == pytest.approx(sd, rel=0.02)
    assert abs(float(torch.corrcoef(torch.stack([first[0].flatten(), first[1].flatten()]))[0, 1])) < 0.03
    s.loss(m, x, y)
    assert not torch.equal(first[0], nodes[0].last_noise)  # redrawn every iteration
    s.predict(m, x, T=4)
    for n in nodes:
        late = n.last_noise[1:]  # steps 2..4: N(lambda V) + N'
        assert float(late.min()) >= 0.0 and float(late.max()) <= 1.0
        assert float(late.mean()) == pytest.approx(0.5, abs=0.005)
    assert not torch.equal(nodes[0].last_noise[0], nodes[1].last_noise[0])  # seeds seed, seed + 1


def test_report_series_and_run_settings() -> None:
    s = _strategy(eval_T=4, seed=1)
    m = s.build_model((1, 8, 8), 10)
    x, y = torch.rand(32, 1, 8, 8) * 3, torch.arange(32) % 10
    rep = s.report(m, x, y)
    (series,) = rep.values()
    assert set(series) == {"stage 2", "stage 3 (alpha=4)", "stage 3 (alpha=2)"}
    assert all(len(v) == 4 for v in series.values())
    expected = (s.predict_anytime(m, x).argmax(-1) == y).float().mean(1).tolist()
    assert series["stage 3 (alpha=4)"] == expected
    assert all(n.stage == 1 and n.seed is None for n in noisy_nodes(m))
    from snnplug.registry import get_registry

    rec = get_registry().get("strategy", "noise")
    assert rec.shared_backbone and _strategy(**rec.run_settings).lr == 1e-3
