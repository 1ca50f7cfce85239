"""Hostile plugins: each is reported by name and the rest of the registry keeps working."""

from __future__ import annotations

import importlib.metadata as md
import textwrap
from types import SimpleNamespace

import pytest

from snnplug.errors import UnknownPluginError
from snnplug.registry import Registry

GOOD = '''
from snnplug.hookspecs import hookimpl
from snnplug.types import NeuronPlugin

@hookimpl
def snnplug_neurons():
    import torch
    return [NeuronPlugin(name=NAME, factory=lambda **kw: torch.nn.Identity(), paper="test")]
'''

HOSTILE = {
    "exit_at_import": "import sys\nsys.exit(3)\n",
    "interrupt_at_import": "raise KeyboardInterrupt\n",
    "base_at_import": "raise BaseException('plain BaseException')\n",
    "exit_in_hook": '''
        import sys
        from snnplug.hookspecs import hookimpl
        @hookimpl
        def snnplug_neurons():
            sys.exit("hook called sys.exit")
        ''',
    "interrupt_in_hook": '''
        from snnplug.hookspecs import hookimpl
        @hookimpl
        def snnplug_neurons():
            raise KeyboardInterrupt
        ''',
    "bad_signature": '''
        from snnplug.hookspecs import hookimpl
        @hookimpl
        def snnplug_neurons(not_an_argument):
            return []
        ''',
    "slow_import": "import time\ntime.sleep(0.3)\n" + GOOD.replace("NAME", '"neuron-slow"'),
}


def _ep(name: str, value: str, dist: str) -> md.EntryPoint:
    return md.EntryPoint(name=name, value=value, group="snnplug")._for(SimpleNamespace(name=dist))


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "good_a.py").write_text(GOOD.replace("NAME", '"neuron-a"'))
    (tmp_path / "builtin_dsr.py").write_text(GOOD.replace("NAME", '"neuron-builtin"'))
    (tmp_path / "evil_dsr.py").write_text(GOOD.replace("NAME", '"neuron-evil"'))
    for mod, body in HOSTILE.items():
        (tmp_path / f"h_{mod}.py").write_text(textwrap.dedent(body))
    return tmp_path


@pytest.mark.parametrize("case,stage,error", [
    ("exit_at_import", "import", "SystemExit: 3"),
    ("interrupt_at_import", "import", "KeyboardInterrupt"),
    ("base_at_import", "import", "BaseException: plain BaseException"),
    ("exit_in_hook", "snnplug_neurons", "SystemExit: hook called sys.exit"),
    ("interrupt_in_hook", "snnplug_neurons", "KeyboardInterrupt"),
    ("bad_signature", "register", "PluginValidationError"),
])
def test_hostile_plugin_is_reported_by_name_and_the_rest_load(plugins, case, stage, error):
    eps = [_ep("hostile", f"h_{case}", "dist-hostile"), _ep("a", "good_a", "dist-a")]
    with pytest.warns(UserWarning, match=r"'hostile' \(dist-hostile\) failed at " + stage):
        reg = Registry(entry_points=eps)
        names = reg.names("neuron")
    assert names == ["neuron-a"]
    [f] = reg.failures
    assert (f.plugin, f.distribution, f.stage) == ("hostile", "dist-hostile", stage)
    assert f.error.startswith(error), f.error
    with pytest.raises(UnknownPluginError, match=r"failed to load: hostile"):
        reg.get("neuron", "neuron-hostile")


def test_third_party_entry_point_named_like_a_builtin(plugins, monkeypatch):
    # listed first, but the built-in distribution still wins and the impostor is named loudly
    eps = [_ep("dsr", "evil_dsr", "evil-dist"), _ep("dsr", "builtin_dsr", "snnplug")]
    with pytest.warns(UserWarning, match=r"'dsr' \(evil-dist\) failed at register: entry point 'dsr' of "
                                         r"evil-dist has the name of the plugin already loaded from snnplug"):
        reg = Registry(entry_points=eps)
    assert reg.names("neuron") == ["neuron-builtin"]
    assert "SNNPLUG_DISABLE_PLUGINS=evil-dist:dsr" in reg.failures[0].error

    # disabling by distribution-qualified name removes exactly that one
    monkeypatch.setenv("SNNPLUG_DISABLE_PLUGINS", "snnplug:dsr")
    reg = Registry(entry_points=eps)
    assert reg.names("neuron") == ["neuron-evil"] and reg.failures == []
    monkeypatch.setenv("SNNPLUG_DISABLE_PLUGINS", "evil-dist:dsr")
    reg = Registry(entry_points=eps)
    assert reg.names("neuron") == ["neuron-builtin"] and reg.failures == []
    monkeypatch.setenv("SNNPLUG_DISABLE_PLUGINS", "dsr")  # a bare name: every entry point called so
    reg = Registry(entry_points=eps)
    assert reg.names("neuron") == []


def test_slow_import_is_reported(plugins, monkeypatch):
    monkeypatch.setenv("SNNPLUG_SLOW_IMPORT_S", "0.1")
    with pytest.warns(UserWarning, match=r"'slow' \(dist-slow\) took 0\.\d s to import"):
        reg = Registry(entry_points=[_ep("slow", "h_slow_import", "dist-slow"), _ep("a", "good_a", "dist-a")])
    assert [(s.plugin, s.distribution) for s in reg.slow] == [("slow", "dist-slow")]
    assert reg.slow[0].seconds >= 0.3
    assert reg.names("neuron") == ["neuron-a", "neuron-slow"]  # slow, but it works
