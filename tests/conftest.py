"""Shared fixtures for the core tests."""

from __future__ import annotations

import gzip
import types
from pathlib import Path

import pytest
import numpy as np
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


#: IDX type codes of the dtypes the data tests write
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    """Write ``arr`` as an IDX file (the MNIST format: magic 0 0 type ndim, big-endian sizes)."""
    header = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
