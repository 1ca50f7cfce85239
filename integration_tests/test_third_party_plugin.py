"""A third-party plugin installed from its own folder is discovered with no change to snnplug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "docs" / "plugin-template"


def test_template_plugin_installs_and_is_discovered(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(TEMPLATE)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-m", "snnplug", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    plugins = {(p["family"], p["name"]): p for p in json.loads(out)["plugins"]}
    assert plugins[("neuron", "heaviside-if")]["distribution"] == "snnplug-heaviside"
    assert ("strategy", "bptt") in plugins  # the built-ins still load beside it
    assert plugins[("strategy", "heaviside")]["distribution"] == "snnplug-heaviside"

    script = """
import torch, snnplug
from spikingjelly.activation_based import neuron, layer
net = torch.nn.Sequential(layer.Linear(3, 2, step_mode='m'), neuron.IFNode(step_mode='m'))
new = snnplug.apply(net, neuron='heaviside-if', T=4)
x = torch.full((4, 1, 3), 0.25)
with torch.no_grad():
    new[0].weight.copy_(torch.eye(2, 3)); new[0].bias.zero_()
print(type(new[1]).__module__, new(x)[:, 0, 0].tolist())
"""
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    module, spikes = out.strip().split(" ", 1)
    assert module == "snnplug_heaviside.neuron"
    # IF with soft reset fed 0.25 per step: v = .25, .5, .75, 1.0 -> one spike at t=4
    assert json.loads(spikes) == [0.0, 0.0, 0.0, 1.0]

    # the template's strategy follows the contract and trains through snnplug's engine
    script = """
import torch, snnplug
from snnplug.engine import TrainConfig, train
s = snnplug.strategy('heaviside', T=3, hidden=16)
m = s.build_model((1, 8, 8), 10)
x, y = torch.rand(32, 1, 8, 8), torch.arange(32) % 10
r = train(s, m, (x, y), TrainConfig(epochs=1, batch_size=8, progress=False))
print(r.steps, s.config()['frames'], tuple(s.predict_anytime(m, x).shape))
"""
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["4", "False", "(3,", "32,", "10)"]

    env_disabled = {**env, "SNNPLUG_DISABLE_PLUGINS": "heaviside"}
    out = subprocess.run([sys.executable, "-m", "snnplug", "plugins", "--json"], env=env_disabled,
                         capture_output=True, text=True, check=True).stdout
    assert "heaviside-if" not in {p["name"] for p in json.loads(out)["plugins"]}
