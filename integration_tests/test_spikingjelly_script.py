"""A real, unmodified SpikingJelly script trains on digits; then the same script with the
one/two snnplug lines from docs/spikingjelly.md inserted at its marked place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "examples" / "spikingjelly_digits.py"
MARKER = "    # --- snnplug lines go here ---\n"

# exactly the lines docs/spikingjelly.md tells users to add
PLUGIN_LINES = {
    "dsr": ['import snnplug', 'net = snnplug.apply(net, neuron="dsr", T=args.T)'],
    "bntt": ['import snnplug', 'net = snnplug.apply(net, normalizer="bntt", T=args.T)'],
}


def _run(script: Path, *args: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-W", "ignore", str(script), *args], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out.stdout).group(1))
    modules = re.search(r"modules: (.*)", out.stdout).group(1)
    return acc, modules


def test_plain_spikingjelly_script_trains():
    acc, modules = _run(SCRIPT, "--epochs", "2")
    assert modules == "BatchNorm2d,IFNode"
    assert acc > 0.8


@pytest.mark.parametrize("plugin", sorted(PLUGIN_LINES))
def test_same_script_with_one_snnplug_line(plugin, tmp_path):
    text = SCRIPT.read_text()
    assert MARKER in text
    lines = "".join(f"    {line}\n" for line in PLUGIN_LINES[plugin])
    script = tmp_path / f"with_{plugin}.py"
    script.write_text(text.replace(MARKER, MARKER + lines))
    doc = (ROOT / "docs" / "spikingjelly.md").read_text()
    assert all(line in doc for line in PLUGIN_LINES[plugin]), "docs/spikingjelly.md must show these lines"
    acc, modules = _run(script, "--epochs", "2", "--T", "8")
    assert "IFNode" not in modules.split(",") if plugin == "dsr" else "BatchNorm2d" not in modules.split(",")
    assert acc > 0.6, f"{plugin}: accuracy {acc} on digits after 2 epochs"
