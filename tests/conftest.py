"""Shared fixtures for the core tests."""

from __future__ import annotations

import types

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def isolated_registry(monkeypatch):
    """A registry with no entry points; tests register in-process plugins into it."""
    import snnplug.registry as registry

    reg = registry.Registry(load_entry_points=False)
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    return reg


def plugin_module(**hooks) -> types.SimpleNamespace:
    """An in-process plugin object whose attributes are @hookimpl functions."""
    from snnplug.hookspecs import hookimpl

    return types.SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})
