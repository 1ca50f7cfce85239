"""Structure of the snnTorch adapter: what converts, what is refused, reset, round trip, apply()."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
import snnplug  # noqa: E402
from snnplug.adapters import nodes  # noqa: E402
from snnplug.adapters import snntorch as A  # noqa: E402
from snnplug.backends.spikingjelly import reset as sj_reset  # noqa: E402
from snnplug.backends.spikingjelly import sj  # noqa: E402
from snnplug.errors import UnsupportedModuleError  # noqa: E402

from .conftest import plugin_module  # noqa: E402, TID252


def _mlp(beta=0.9):
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), snn.Leaky(beta=beta, init_hidden=True),
                         nn.Linear(8, 3), snn.Leaky(beta=beta, init_hidden=True))


def test_neuron_classes_and_layers():
    out = A.to_spikingjelly(_mlp())
    assert type(out[2]) is nodes.LIFNode and type(out[4]) is nodes.LIFNode
    assert isinstance(out[1], sj().layer.SeqToANNContainer)
    assert type(A.to_spikingjelly(_mlp(beta=1.0))[2]) is nodes.IFNode
    learn = nn.Sequential(snn.Leaky(beta=1.0, learn_beta=True, init_hidden=True))
    assert type(A.to_spikingjelly(learn)[0]) is nodes.LIFNode  # beta may move away from 1
    syn = nn.Sequential(snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True))
    assert type(A.to_spikingjelly(syn)[0]) is nodes.SynapticNode
    assert isinstance(A.to_spikingjelly(_mlp(), layers="per-step")[1], sj().layer.MultiStepContainer)


def test_original_is_not_modified_and_weights_copied():
    net = _mlp()
    out = A.to_spikingjelly(net)
    assert isinstance(net[2], snn.Leaky)
    pairs = A.parameter_pairs(net, out)
    assert len(pairs) == 4 and all(torch.equal(p, q) and p is not q for _, p, q in pairs)


@pytest.mark.parametrize("make", [
    lambda: snn.RLeaky(beta=0.9, linear_features=4, init_hidden=True),
    lambda: snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True),
    lambda: snn.SLSTM(4, 4, init_hidden=True),
])
def test_unsupported_neuron_named(make):
    net = nn.Sequential(nn.Linear(4, 4), make())
    with pytest.raises(UnsupportedModuleError) as err:
        A.to_spikingjelly(net)
    assert "'1'" not in str(err.value) and "1 is an snnTorch" in str(err.value)
    assert type(net[1]).__name__ in str(err.value)


def test_init_hidden_false_explains():
    net = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9))
    with pytest.raises(UnsupportedModuleError, match="init_hidden=True"):
        A.to_spikingjelly(net)


def test_batchnormtt_refused_with_hint():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), *snn.BatchNormTT2d(2, time_steps=2)[:1])
    net2 = nn.Sequential(nn.Conv2d(1, 2, 3), snn.BatchNormTT2d(2, time_steps=2))
    with pytest.raises(UnsupportedModuleError, match="bntt"):
        A.to_spikingjelly(net2)
    assert isinstance(A.to_spikingjelly(net)[1], nn.BatchNorm2d)  # a plain BN inside is fine


def test_is_snntorch_model_is_cheap():
    assert A.is_snntorch_model(_mlp())
    assert not A.is_snntorch_model(nn.Sequential(nn.Linear(2, 2)))
    code = textwrap.dedent("""
        import sys, torch
        from snnplug.adapters.snntorch import is_snntorch_model
        assert not is_snntorch_model(torch.nn.Linear(2, 2))
        assert 'snntorch' not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reset_reaches_nested_neurons():
    inner = nn.Sequential(nn.Linear(3, 3), snn.Leaky(beta=0.9, init_hidden=True))
    net = nn.Sequential(nn.Sequential(inner))
    net(torch.ones(2, 3) * 5)
    assert inner[1].mem.abs().sum() > 0
    A.reset(net)
    assert inner[1].mem.abs().sum() == 0


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 5)
        self.lif = snn.Leaky(beta=0.75, init_hidden=True)
        self.fc2 = nn.Linear(5, 2)
        self.lif2 = snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True)

    def forward(self, x):
        h = self.lif(self.fc(x))
        return self.lif2(self.fc2(h + 0.25 * x[:, :1]))


def test_custom_module_runs_per_step_exactly():
    torch.manual_seed(0)
    net = _Custom()
    out = A.to_spikingjelly(net)
    assert isinstance(out, sj().layer.MultiStepContainer)
    x = torch.randn(6, 3, 4) * 2
    ref = A.run(net, x)
    sj_reset(out)
    assert torch.equal(out(x), ref)
    sj_reset(out)
    assert torch.equal(out(x), ref)  # reset_net reaches the nodes inside


def test_round_trip_from_spikingjelly():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2),
                        snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero", reset_delay=False),
                        nn.Flatten(), nn.Linear(2 * 6 * 6, 3),
                        snn.Synaptic(alpha=0.5, beta=0.75, threshold=0.5, init_hidden=True, learn_threshold=True))
    net.eval()
    back = A.from_spikingjelly(A.to_spikingjelly(net))
    assert isinstance(back[2], snn.Leaky) and back[2].reset_mechanism == "zero" and not back[2].reset_delay
    assert isinstance(back[5].threshold, nn.Parameter)
    x = torch.rand(5, 2, 1, 8, 8) * 3
    back.eval()
    assert torch.equal(A.run(back, x), A.run(net, x))


def test_from_spikingjelly_refuses_stock_neurons():
    net = nn.Sequential(sj().layer.Linear(3, 3, step_mode="m"), sj().neuron.IFNode(step_mode="m"))
    with pytest.raises(UnsupportedModuleError, match="IFNode"):
        A.from_spikingjelly(net)


def test_bad_arguments():
    with pytest.raises(ValueError, match="layers"):
        A.to_spikingjelly(_mlp(), layers="fast")
    with pytest.raises(ValueError, match="impl"):
        A.to_spikingjelly(_mlp(), impl="cuda")
    with pytest.raises(TypeError):
        A.to_spikingjelly("net")
    node = A.to_spikingjelly(_mlp())[2]
    with pytest.raises(snnplug.ShapeError):
        node(torch.ones(3))


def test_state_of_another_shape_restarts_from_zero_like_snntorch():
    node = A.to_spikingjelly(_mlp())[2]
    node(torch.ones(2, 4, 8) * 3)
    out = node(torch.ones(2, 5, 8) * 0.5)  # batch changed without reset: snnTorch starts from zeros
    assert out.sum() == 0


# -- snnplug.apply on snnTorch models ---------------------------------------------------------

def test_apply_converts_first(isolated_registry):
    from snnplug.types import NeuronPlugin

    class Twice(sj().base.MemoryModule):
        snnplug_spiking = True

        def __init__(self, T=4):
            super().__init__()
            self.step_mode = "m"

        def multi_step_forward(self, x):
            return (x > 0).float() * 2

        def single_step_forward(self, x):
            return (x > 0).float() * 2

    def factory(T=4, **kw):
        """Test neuron: 2*1[x > 0]."""
        return Twice(T=T)

    isolated_registry.register(plugin_module(snnplug_neurons=lambda: [NeuronPlugin(
        name="twice", factory=factory, paper="test", replaces=("IFNode", "LIFNode"))]), name="twice")
    net = _mlp()
    out, summary = snnplug.apply(net, neuron="twice", T=4, return_summary=True)
    assert sum(isinstance(m, Twice) for m in out.modules()) == 1  # the readout Leaky is kept
    assert len(summary.kept_readout) == 1
    out = snnplug.apply(net, neuron="twice", T=4, readout="replace")
    assert sum(isinstance(m, Twice) for m in out.modules()) == 2
    assert isinstance(net[2], snn.Leaky)
    y = out(torch.rand(4, 2, 1, 4, 4))
    assert y.shape == (4, 2, 3) and set(y.unique().tolist()) <= {0.0, 2.0}


def test_apply_dsr_on_snntorch_model():
    from snnplug.errors import UnknownPluginError

    try:
        snnplug.get_registry().get("neuron", "dsr-if")
    except UnknownPluginError:
        pytest.skip("dsr plugin not installed")
    out = snnplug.apply(_mlp(), neuron="dsr-if", T=4, readout="replace")
    assert not any(isinstance(m, nodes.SnnTorchLeakyNode) for m in out.modules())
    kept = snnplug.apply(_mlp(), neuron="dsr-if", T=4)  # default: the readout Leaky stays
    assert sum(isinstance(m, nodes.SnnTorchLeakyNode) for m in kept.modules()) == 1
    sj_reset(out)
    assert out(torch.rand(4, 2, 1, 4, 4)).shape == (4, 2, 3)


def test_apply_bntt_normalizer_on_snntorch_conv():
    from snnplug.errors import UnknownPluginError

    try:
        snnplug.get_registry().get("normalizer", "bntt")
    except UnknownPluginError:
        pytest.skip("bntt plugin not installed")
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    out = snnplug.apply(net, normalizer="bntt", T=4)
    assert not any(type(m).__name__.startswith("Stepwise") for m in out.modules())
    sj_reset(out)
    assert out(torch.rand(4, 2, 1, 4, 4)).shape == (4, 2, 3)


def test_docs_snippet():
    """The example at the top of docs/snntorch.md."""
    from spikingjelly.activation_based import functional

    from snnplug.adapters.snntorch import from_spikingjelly, run, to_spikingjelly

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(128, 10), snn.Leaky(beta=0.9, init_hidden=True))
    sj_net = to_spikingjelly(net)
    x_seq = torch.rand(32, 16, 1, 8, 8) * 4
    functional.reset_net(sj_net)
    assert torch.equal(sj_net(x_seq), run(net, x_seq))
    back = from_spikingjelly(sj_net)
    assert torch.equal(run(back, x_seq), run(net, x_seq))
