"""Trainer, checkpoints and metrics."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer
from torch import nn

import snnplug
from snnplug.data import load_dataset
from snnplug.engine import TrainConfig, load_checkpoint, save_checkpoint, train
from snnplug.engine.resume import config_difference
from snnplug.engine.seed import seed_everything
from snnplug.engine.energy import E_AC_PJ, E_MAC_PJ, ann_energy_uj_per_sample, record_energy
from snnplug.errors import CheckpointError


def _run(out, epochs, **kw):
    """bptt on 256 digits (4 steps per epoch); the model is built after seeding, as the CLI does."""
    s = snnplug.strategy("bptt", T=2)
    b = load_dataset("digits", limit=256)
    seed_everything(3)
    m = s.build_model(b.input_shape, b.num_classes)
    return train(s, m, b, TrainConfig(epochs=epochs, batch_size=64, out_dir=out, progress=False, seed=3, **kw))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_after_an_epoch_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    full = _run(tmp_path / "full", 2)
    _run(tmp_path / "cut", 2, max_steps=4)  # "killed" right after epoch 1's checkpoint
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = _run(tmp_path / "cut", 2, resume=True)
    assert _same_weights(full.model, resumed.model)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_resume_mid_epoch_replays_the_shuffle(tmp_path):
    full = _run(tmp_path / "full", 2)
    _run(tmp_path / "cut", 2, checkpoint_every=2, max_steps=6)  # killed inside epoch 2
    state = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 6)
    resumed = _run(tmp_path / "cut", 2, resume=True)
    assert _same_weights(full.model, resumed.model)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(CheckpointError, match="corrupt, truncated"):
        load_checkpoint(tmp_path / "torn.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an snnplug checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "snnplug-checkpoint/1", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "evil.pt")
    save_checkpoint(tmp_path / "ok.pt", {"strategy": "bptt", "strategy_config": {}, "model": {}, "epoch": 0})
    with pytest.raises(CheckpointError, match="written by strategy 'bptt', not 'dsr'"):
        load_checkpoint(tmp_path / "ok.pt", strategy="dsr")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_resume_with_other_options_is_refused(tmp_path):
    _run(tmp_path / "a", 1)
    s = snnplug.strategy("bptt", T=3)
    b = load_dataset("digits", limit=64)
    with pytest.raises(CheckpointError, match=r"strategy options differ from this run's \(T was 2, now 3\); "
                                              r"resume with the same options"):
        train(s, s.build_model(b.input_shape, b.num_classes), b,
              TrainConfig(epochs=2, out_dir=tmp_path / "a", resume=True, progress=False))


def test_config_difference_counts_a_missing_option_as_none():
    assert config_difference({"T": 2}, {"T": 2, "channels": None}) == []
    assert config_difference({"T": 2, "gone": None}, {"T": 2}) == []
    assert config_difference({"T": 2}, {"T": 3, "channels": [8]}) == [("T", 2, 3), ("channels", None, [8])]


def test_a_run_checkpointed_before_an_option_existed_resumes(tmp_path):
    """A checkpoint whose strategy config has an option this version no longer writes (or lacks
    one it now writes) at None continues; the weights equal an uninterrupted run's."""
    full = _run(tmp_path / "full", 2)
    _run(tmp_path / "old", 2, max_steps=4)
    path = tmp_path / "old" / "checkpoint.pt"
    state = load_checkpoint(path)
    state["strategy_config"] = {**state["strategy_config"], "option_of_another_version": None}
    save_checkpoint(path, {k: v for k, v in state.items() if k != "format"})
    resumed = _run(tmp_path / "old", 2, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert _same_weights(full.model, resumed.model)


class _Spiker(nn.Module):
    snnplug_spiking = True

    def forward(self, x):
        return (x > 0.5).float()


def test_energy_counts_macs_for_real_inputs_and_acs_for_spikes():
    """Hand-computed: fc1 4->3 fed real values (T=2, B=1): 2*3*4 MACs; its spikes feed fc2 3->2."""
    fc1, fc2 = layer.Linear(4, 3, bias=False, step_mode="m"), layer.Linear(3, 2, bias=False, step_mode="m")
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]))
    net = nn.Sequential(fc1, _Spiker(), fc2)
    x = torch.tensor([[[0.9, 0.2, 0.3, 0.1]], [[0.9, 0.8, 0.3, 0.1]]])  # [T=2, B=1, 4]
    with record_energy(net, batch=1, steps=2) as rep:
        net(x)
    # spikes: t0 -> [1,0,0], t1 -> [1,1,0]: 3 spikes of 6 outputs
    assert rep.spike_rates == {"1": 0.5}
    assert rep.spikes == 3
    expected_pj = (2 * 3 * 4) * E_MAC_PJ + (2 * 2 * 3) * 0.5 * E_AC_PJ
    assert rep.snn_pj / 1e6 == pytest.approx(expected_pj / 1e6)
    assert rep.ann_pj == pytest.approx((3 * 4 + 2 * 3) * E_MAC_PJ)  # the same net as an ANN, one pass
    ann = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert ann_energy_uj_per_sample(ann, torch.rand(5, 4)) == pytest.approx((12 + 6) * E_MAC_PJ / 1e6)


def test_event_rate_of_plain_and_pooled_spikes():
    from snnplug.engine.energy import event_rate

    spikes = torch.tensor([[[[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]]]]) * 6.0  # amplitude Vth = 6
    assert event_rate(spikes) == pytest.approx(6 / 8)
    pooled = torch.nn.functional.avg_pool2d(spikes, 2)  # windows: all four spike / two of four spike
    assert event_rate(pooled) == pytest.approx(6 / 8)
    assert event_rate(torch.zeros(3, 4)) == 0.0


class _Scaled(nn.Module):
    """Spikes times 3, declaring that amplitude (like a converter's scaled activation)."""

    spike_amplitude = 3.0

    def forward(self, x):
        return 3.0 * x


@pytest.mark.parametrize("scaled", [False, True])
def test_pooled_spikes_without_a_full_window_are_events_at_the_neurons_amplitude(scaled):
    """Windows of 4 with 3 and 1 spikes pool to 0.75 and 0.25 (times the amplitude): no window is
    full, so the largest input is not the amplitude; the neuron before the layer gives it."""
    fc = layer.Linear(2, 1, bias=False, step_mode="m")
    mods = [_Spiker()] + ([_Scaled()] if scaled else []) + [layer.AvgPool2d(2, step_mode="m"),
                                                            layer.Flatten(step_mode="m"), fc]
    net = nn.Sequential(*mods)
    x = torch.zeros(1, 1, 2, 2, 2)  # [T=1, B=1, C=2, 2, 2]
    x[0, 0, 0] = torch.tensor([[0.9, 0.9], [0.9, 0.0]])
    x[0, 0, 1] = torch.tensor([[0.9, 0.0], [0.0, 0.0]])
    with torch.no_grad(), record_energy(net, batch=1, steps=1) as rep:
        net(x)
    (spiker, fc_ops) = rep.spike_rates["0"], rep.layers[-1]
    assert spiker == pytest.approx(4 / 8)
    assert fc_ops.rate == pytest.approx(4 / 8)  # 4 spikes on 8 pre-pool elements = mean of (0.75, 0.25)
    assert rep.snn_pj == pytest.approx(2 * 0.5 * E_AC_PJ)


def test_sigterm_handler_is_restored_even_when_training_fails(tmp_path):
    import signal

    s = snnplug.strategy("bptt", T=2)
    b = load_dataset("digits", limit=64)
    m = s.build_model(b.input_shape, b.num_classes)

    def broken_loss(model, x, y):
        raise RuntimeError("loss exploded")

    s.loss = broken_loss
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError, match="loss exploded"):
        train(s, m, b, TrainConfig(epochs=1, out_dir=tmp_path, progress=False))
    assert signal.getsignal(signal.SIGTERM) is before
