"""``snnplug compare --model package.module:factory``: the user's own snnTorch model.

Models are module files written to ``tmp_path`` and put on ``sys.path``, as a user's would be;
the networks are snnTorch's tutorial networks verbatim (tutorial 5's ``Net``, tutorial 6's
``nn.Sequential`` convnet), plus small variants for each misfit. Every error is checked for its
type and its message (the problem and the fix).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

pytest.importorskip("snntorch")
from torch import nn  # noqa: E402

from snnplug.app import cli  # noqa: E402
from snnplug.app.compare import main as compare_main  # noqa: E402
from snnplug.app.model_spec import ModelSpecError, load_model  # noqa: E402
from snnplug.engine.rundir import RunFolderError  # noqa: E402
from snnplug.errors import ShapeError, UnsupportedModuleError  # noqa: E402

# snnTorch tutorial 5, section "Define the Network", verbatim (the globals it reads, then the class)
TUTORIAL_5 = '''
import torch, torch.nn as nn
import snntorch as snn

# Network Architecture
num_inputs = 28*28
num_hidden = 1000
num_outputs = 10

# Temporal Dynamics
num_steps = 25
beta = 0.95

# Define Network
class Net(nn.Module):
    def __init__(self):
        super().__init__()

        # Initialize layers
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):

        # Initialize hidden states at t=0
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()

        # Record the final layer
        spk2_rec = []
        mem2_rec = []

        for step in range(num_steps):
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)

        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)
'''

# snnTorch tutorial 6, "Initialize Network" (nn.Sequential form), verbatim; device = cpu
TUTORIAL_6 = '''
import torch, torch.nn as nn
import snntorch as snn
from snntorch import surrogate

device = torch.device("cpu")
# neuron and simulation parameters
spike_grad = surrogate.fast_sigmoid(slope=25)
beta = 0.5

#  Initialize Network
net = nn.Sequential(nn.Conv2d(1, 12, 5),
                    nn.MaxPool2d(2),
                    snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                    nn.Conv2d(12, 64, 5),
                    nn.MaxPool2d(2),
                    snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                    nn.Flatten(),
                    nn.Linear(64*4*4, 10),
                    snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True)
                    ).to(device)
'''

# a user's own factory: tutorial 6's style (nn.Sequential, init_hidden=True) for 8x8 digits
USER_MLP = '''
import torch.nn as nn
import snntorch as snn

def build(hidden=32, n_in=64, n_out=10, flatten=True):
    layers = [nn.Flatten()] if flatten else []
    return nn.Sequential(*layers, nn.Linear(n_in, hidden), snn.Leaky(beta=0.9, init_hidden=True),
                         nn.Linear(hidden, n_out), snn.Leaky(beta=0.9, init_hidden=True))

def needs_width(width):
    return build(width)

def not_a_model():
    return 42

def broken():
    raise RuntimeError("weights file missing")

WIDTH = 3
plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
'''

FASHION = Path("/usr/share/datasets/fashion-mnist")
QUICK = ["--T", "2", "--epochs", "0", "--limit", "64", "--repeats", "2", "--warmup", "1", "--no-methods"]


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Writes the model files under names unique to the test; returns name -> module name."""
    tag = uuid.uuid4().hex[:10]
    names = {}
    for key, src in {"t5": TUTORIAL_5, "t6": TUTORIAL_6, "user": USER_MLP}.items():
        names[key] = f"{key}_{tag}"
        (tmp_path / f"{names[key]}.py").write_text(textwrap.dedent(src))
    (tmp_path / f"needsdep_{tag}.py").write_text("import not_installed_pkg_xyz\n")
    names["needsdep"] = f"needsdep_{tag}"
    monkeypatch.syspath_prepend(str(tmp_path))
    return names


@pytest.mark.parametrize("spec, message", [
    ("mymodel", "--model 'mymodel' is not an import string; write it as package.module:factory"),
    ("mymodel:", "--model 'mymodel:' is not an import string"),
    ("my-model:build", "--model 'my-model:build' is not an import string"),
    ("nets/mine.py:build", "--model 'nets/mine.py:build' names a file; name the module instead, without .py and "
                           "with dots for folders: --model nets.mine:build"),
    ("no_such_module_xyz:build", "no module named 'no_such_module_xyz' (searched the current folder"),
])
def test_bad_import_strings(spec, message):
    with pytest.raises(ModelSpecError) as err:
        load_model(spec)
    assert message in str(err.value)
    if "no module" in message:
        assert "run from the folder that holds no_such_module_xyz.py, add its folder to PYTHONPATH" in str(err.value)


def test_module_that_imports_a_missing_package(modules):
    with pytest.raises(ModelSpecError, match=rf"importing '{modules['needsdep']}' failed because it imports "
                                             r"'not_installed_pkg_xyz', which is not installed"):
        load_model(f"{modules['needsdep']}:build")


def test_missing_attribute_lists_what_the_module_defines(modules):
    with pytest.raises(ModelSpecError) as err:
        load_model(f"{modules['user']}:buld")
    msg = str(err.value)
    assert f"{modules['user']!r} has no attribute 'buld'" in msg
    assert "(it defines: broken, build, needs_width, not_a_model, plain)" in msg


@pytest.mark.parametrize("attr, kwargs, message", [
    ("WIDTH", {}, "is a int, not callable; point it at a function or class that returns the model"),
    ("not_a_model", {}, "returned a int, not a torch.nn.Module"),
    ("needs_width", {}, "cannot call it with no arguments (missing a required argument: 'width'); pass its "
                        "arguments as --model-arg name=value"),
    ("build", {"depth": 3}, "cannot call it with depth=3 (got an unexpected keyword argument 'depth')"),
    ("broken", {}, "calling it raised RuntimeError: weights file missing"),
    ("plain", {"hidden": 3}, "is an nn.Module instance, which takes no --model-arg"),
])
def test_factory_errors(modules, attr, kwargs, message):
    with pytest.raises(ModelSpecError) as err:
        load_model(f"{modules['user']}:{attr}", kwargs)
    assert message in str(err.value)


def test_factory_class_and_instance(modules):
    m = load_model(f"{modules['user']}:build", {"hidden": 7})
    assert m[1].out_features == 7  # the keyword argument reached the factory
    t5 = load_model(f"{modules['t5']}:Net")  # a class is a factory: Net()
    assert type(t5).__name__ == "Net" and t5.fc1.in_features == 784
    t6 = load_model(f"{modules['t6']}:net")  # a module-level instance is taken as it is
    import importlib

    assert t6 is importlib.import_module(modules["t6"]).net


def _run(args, tmp_path, name="out"):
    return compare_main([*args, *QUICK, "--out", str(tmp_path / name)])


@pytest.mark.parametrize("attr, kwargs, message", [
    # tutorial-6 convnet on 8x8 digits: the second 5x5 convolution gets 2x2 maps
    ("t6:net", [], "layer '3' (Conv2d(12, 64, kernel_size=(5, 5), stride=(1, 1))) failed on input [2, 12, 2, 2]"),
    ("t6:net", [], "the dataset's [1, 8, 8] images are too small for the model's kernels and pooling; pass "
                   "--dataset fashion-mnist (1x28x28)"),
    ("user:build", ["n_in=784"], "layer '1' (Linear(in_features=784, out_features=32, bias=True)) failed on input "
                                 "[2, 64]"),
    ("user:build", ["n_in=784"], "it expects 784 features per sample and gets 64; pass --dataset fashion-mnist "
                                 "(1x28x28), or build the model for [1, 8, 8] samples"),
    ("user:build", ["flatten=false"], "failed on input [2, 1, 8, 8]"),
    ("user:build", ["flatten=false"], "add nn.Flatten() before it (the dataset gives [1, 8, 8] images)"),
])
def test_shape_mismatch_caught_before_running(modules, tmp_path, attr, kwargs, message):
    key, fn = attr.split(":")
    with pytest.raises(ShapeError) as err:
        _run(["--model", f"{modules[key]}:{fn}", *sum((["--model-arg", kv] for kv in kwargs), [])], tmp_path)
    assert "the model does not take dataset 'digits' (samples [1, 8, 8], batches [B, 1, 8, 8])" in str(err.value)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_wrong_number_of_outputs(modules, tmp_path):
    with pytest.raises(ShapeError, match=r"maps dataset 'digits' \(samples \[1, 8, 8\]\) to \[2, 5\] per step, but "
                                         r"compare needs \[batch, 10\].*have 10 outputs"):
        _run(["--model", f"{modules['user']}:build", "--model-arg", "n_out=5"], tmp_path)


def test_unconvertible_and_neuronless_models(modules, tmp_path):
    with pytest.raises(UnsupportedModuleError, match=r"the model cannot be converted to SpikingJelly: lif1: snnTorch "
                                                     r"Leaky has init_hidden=False.*Build the neurons with init_hidden=True"):
        _run(["--model", f"{modules['t5']}:Net"], tmp_path)
    with pytest.raises(UnsupportedModuleError, match=r"the model has no snnTorch neurons \(snn.Leaky or snn.Synaptic "
                                                     r"with init_hidden=True\)"):
        _run(["--model", f"{modules['user']}:plain"], tmp_path)


def test_import_string_end_to_end_through_the_cli(modules, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = cli.main(["compare", "--model", f"{modules['user']}:build", "--model-arg", "hidden=24", *QUICK,
                   "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "compare.json").read_text())
    fw = res["frameworks"]
    assert res["model"] == f"{modules['user']}:build"
    # the factory's hidden=24 reached the model: 12 test samples (limit 64 // 5), T=2, 24 + 10 neurons
    assert fw["spikes_compared"] == 12 * 2 * (24 + 10) and fw["spike_mismatches"] == 0
    assert fw["timing"]["repeats"] == 2 and len(fw["timing"]["seconds"]["snntorch"]) == 2
    assert (out / "compare.txt").read_text().startswith(f"snnTorch loop vs SpikingJelly multi-step: {modules['user']}")
    # the same --out again is refused (the result is not overwritten), --force replaces it
    capsys.readouterr()
    assert cli.main(["compare", "--model", f"{modules['user']}:build", *QUICK, "--out", str(out)]) == 2
    assert f"{out} already holds a compare result ({out / 'compare.json'}); pass --force" in capsys.readouterr().err
    assert cli.main(["compare", "--model", f"{modules['user']}:build", *QUICK, "--out", str(out), "--force"]) == 0
    assert json.loads((out / "compare.json").read_text())["frameworks"]["spikes_compared"] == 12 * 2 * (32 + 10)


def test_bad_spec_through_the_cli_is_one_line(capsys, tmp_path):
    assert cli.main(["compare", "--model", "nocolon", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnplug: error: --model 'nocolon' is not an import string") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing created for a command that cannot run
    assert cli.main(["compare", "--model-arg", "a=1", "--out", str(tmp_path / "o")]) == 2
    assert "--model-arg is given without --model" in capsys.readouterr().err


def test_out_must_be_a_folder(tmp_path):
    f = tmp_path / "compare.json"
    f.write_text("mine")
    with pytest.raises(RunFolderError, match=r"is a file, not a folder"):
        compare_main(["--out", str(f), *QUICK])
    assert f.read_text() == "mine"


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST IDX files not installed")
def test_tutorial_6_convnet_on_fashion_mnist(modules, tmp_path):
    """snnTorch tutorial 6's network verbatim, on the 28x28 data it was written for (output=True:
    the last layer returns (spikes, membrane); compare reads the spikes)."""
    _run(["--model", f"{modules['t6']}:net", "--dataset", "fashion-mnist"], tmp_path)
    fw = json.loads((tmp_path / "out" / "compare.json").read_text())["frameworks"]
    # 12 test images, T=2; spikes of the three Leaky layers: 12x12x12, 64x4x4 and 10 per image
    assert fw["spikes_compared"] == 12 * 2 * (12 * 12 * 12 + 64 * 4 * 4 + 10)
    assert fw["spike_mismatches"] == 0 and fw["dataset"] == "fashion-mnist"
