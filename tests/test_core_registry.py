"""Registry behaviour: entry points, narrowing, failures reported by name, conflicts, unknown names."""

from __future__ import annotations

import importlib.metadata as md
import textwrap
from types import SimpleNamespace

import pytest

from snnplug.errors import PluginConflictError, UnknownPluginError
from snnplug.registry import Registry

PLUGIN_SRC = '''
from snnplug.hookspecs import hookimpl
from snnplug.types import NeuronPlugin, StrategyPlugin

def make(**kw):
    """A test neuron: identity."""
    import torch
    return torch.nn.Identity()

@hookimpl
def snnplug_neurons():
    return [NeuronPlugin(name=NAME, factory=make, paper="test")]
'''


def _ep(name: str, value: str, dist: str) -> md.EntryPoint:
    ep = md.EntryPoint(name=name, value=value, group="snnplug")
    return ep._for(SimpleNamespace(name=dist))  # what importlib does for installed distributions


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    def write(module: str, body: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))

    monkeypatch.syspath_prepend(str(tmp_path))
    write("fake_a", PLUGIN_SRC.replace("NAME", '"neuron-a"'))
    write("fake_b", PLUGIN_SRC.replace("NAME", '"neuron-b"'))
    write("fake_dup", PLUGIN_SRC.replace("NAME", '"neuron-a"'))
    write("fake_broken", "raise RuntimeError('boom at import')\n")
    write("fake_raises", """
        from snnplug.hookspecs import hookimpl
        @hookimpl
        def snnplug_neurons():
            raise ValueError('hook exploded')
        """)
    write("fake_wrongtype", """
        from snnplug.hookspecs import hookimpl
        @hookimpl
        def snnplug_neurons():
            return ["not a registration"]
        """)
    return tmp_path


def test_entry_points_load_and_lookup(plugin_dir):
    reg = Registry(entry_points=[_ep("a", "fake_a", "dist-a"), _ep("b", "fake_b", "dist-b")])
    assert reg.names("neuron") == ["neuron-a", "neuron-b"]
    rec = reg.get("neuron", "neuron-b")
    assert rec.distribution == "dist-b"
    assert rec.doc == "A test neuron: identity."


def test_unknown_name_lists_known(plugin_dir):
    reg = Registry(entry_points=[_ep("a", "fake_a", "dist-a")])
    with pytest.raises(UnknownPluginError, match=r"unknown neuron 'nope'; known: neuron-a"):
        reg.get("neuron", "nope")
    with pytest.raises(ValueError, match="unknown plugin family"):
        reg.get("neurons", "neuron-a")


def test_broken_import_is_reported_and_others_load(plugin_dir):
    with pytest.warns(UserWarning, match=r"'broken' \(dist-broken\) failed at import: RuntimeError: boom"):
        reg = Registry(entry_points=[_ep("broken", "fake_broken", "dist-broken"), _ep("a", "fake_a", "dist-a")])
    assert reg.names("neuron") == ["neuron-a"]
    assert [(f.plugin, f.distribution, f.stage) for f in reg.failures] == [("broken", "dist-broken", "import")]
    with pytest.raises(UnknownPluginError, match=r"failed to load: broken"):
        reg.get("neuron", "missing")


def test_hook_that_raises_or_returns_wrong_type_is_reported(plugin_dir):
    reg = Registry(entry_points=[_ep("r", "fake_raises", "dist-r"), _ep("w", "fake_wrongtype", "dist-w"),
                                 _ep("a", "fake_a", "dist-a")])
    with pytest.warns(UserWarning):
        names = reg.names("neuron")
    assert names == ["neuron-a"]
    stages = {(f.plugin, f.stage) for f in reg.failures}
    assert stages == {("r", "snnplug_neurons"), ("w", "snnplug_neurons")}
    assert any("expected NeuronPlugin" in f.error for f in reg.failures)


def test_duplicate_names_fail_naming_both_distributions(plugin_dir):
    reg = Registry(entry_points=[_ep("a", "fake_a", "dist-a"), _ep("dup", "fake_dup", "dist-dup")])
    with pytest.raises(PluginConflictError, match=r"'neuron-a' is registered twice: by dist-a and by dist-dup"):
        reg.names("neuron")


def test_env_vars_narrow_loading(plugin_dir, monkeypatch):
    eps = [_ep("a", "fake_a", "dist-a"), _ep("b", "fake_b", "dist-b"), _ep("broken", "fake_broken", "x")]
    monkeypatch.setenv("SNNPLUG_LOAD_PLUGINS", "a, b")
    monkeypatch.setenv("SNNPLUG_DISABLE_PLUGINS", "b")
    reg = Registry(entry_points=eps)
    assert reg.names("neuron") == ["neuron-a"]
    assert reg.failures == []  # the broken one was never imported


def test_builtin_plugins_come_from_entry_points():
    """The installed distribution declares every built-in plugin in the 'snnplug' group."""
    names = {ep.name: ep.value for ep in md.entry_points(group="snnplug")}
    assert names["bptt"] == "snnplug.baseline"
    for p in ("dsr", "bntt", "opi", "noise"):
        assert names[p] == f"snnplug_{p}.plugin"


def test_import_snnplug_is_cheap():
    import subprocess
    import sys

    code = ("import sys, snnplug; heavy = [m for m in ('torch', 'torchvision', 'torchaudio', 'tonic', "
            "'spikingjelly', 'snntorch') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registration_records_validate():
    from snnplug.types import NeuronPlugin

    with pytest.raises(ValueError, match="non-empty string"):
        NeuronPlugin(name=" x", factory=lambda: None, paper="p")
    with pytest.raises(TypeError, match="factory must be callable"):
        NeuronPlugin(name="x", factory=3, paper="p")
