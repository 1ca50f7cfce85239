"""Which implementation a neuron runs: its fused Triton kernel (CUDA tensors) or its torch path.

Every plugin neuron keeps its torch implementation as the CPU path and as the reference; the
fused Triton kernels live next to it (``snnplug_dsr.kernels``, ``snnplug_bntt.kernels``,
``snnplug_noise.kernels``, ``snnplug_opi.kernels``, ``snnplug.adapters.kernels``). A neuron's
forward asks :func:`for_tensor` once::

    k = kernels.for_tensor(x, "snnplug_bntt.kernels")
    fn = LIFSequence if k is None else k.LIFSequence   # torch path, or the fused kernels

:func:`for_tensor` returns the kernel module only for float32 CUDA tensors, with kernels enabled
and Triton importable; CPU tensors never touch Triton. The tests check the kernels on CPU through
:func:`interpreted` (a copy of a kernel module run by Triton's interpreter); docs/gpu.md.

Choosing: the environment variable ``SNNPLUG_KERNELS`` (``auto``, the default, or ``torch``) sets
the initial mode; :func:`set_mode` changes it for the process and :func:`use` for a block::

    snnplug.kernels.set_mode("torch")       # every neuron runs its torch path, also on CUDA
    with snnplug.kernels.use("torch"): ...
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

MODES = ("auto", "torch")
ENV = "SNNPLUG_KERNELS"
_log = logging.getLogger(__name__)


def _check_mode(mode: Any, where: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{where} must be one of {MODES} ('auto': fused Triton kernels on CUDA "
                         f"tensors; 'torch': always the torch path), got {mode!r}")
    return str(mode)


_mode: str = _check_mode(os.environ.get(ENV, "auto").strip().lower() or "auto", f"${ENV}")
_failed: dict[str, str] = {}


def mode() -> str:
    """The current mode: ``"auto"`` or ``"torch"``."""
    return _mode


def set_mode(new: str) -> None:
    """Set the mode for the process: ``"auto"`` (kernels on CUDA) or ``"torch"`` (never)."""
    global _mode
    _mode = _check_mode(new, "kernel mode")


@contextlib.contextmanager
def use(new: str) -> Iterator[None]:
    """Run a block in another mode (restored on exit)."""
    old = _mode
    set_mode(new)
    try:
        yield
    finally:
        set_mode(old)


def load(module: str) -> ModuleType | None:
    """Import a kernel module, or None (logged once) when Triton cannot be imported."""
    if module in _failed:
        return None
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as error:  # no triton, or a broken install: torch path
        _failed[module] = str(error)
        _log.warning("snnplug: fused kernels %s unavailable (%s); using the torch path", module, error)
        return None


def for_tensor(x: Any, module: str) -> ModuleType | None:
    """The kernel module ``module`` when ``x`` is a float32 CUDA tensor and kernels are on, else
    None (the caller runs its torch path). The kernels compute in float32 only."""
    if _mode == "torch" or not getattr(x, "is_cuda", False):
        return None
    import torch

    if x.dtype != torch.float32:
        return None
    return load(module)


def interpreted(module: str) -> ModuleType:
    """A private copy of the kernel module ``module`` whose kernels run in Triton's interpreter
    (``TRITON_INTERPRET=1``), on CPU tensors: how the kernels are checked without a GPU.

    The variable is set only while the copy's ``@triton.jit`` decorators run (Triton 3 decides
    interpreter or compiler there) and restored afterwards; the copy is not put in
    ``sys.modules``, so nothing else in the process changes. Triton itself is imported before, so
    its library stays compiled: kernel modules may therefore call only ``tl`` builtins and their
    own ``@triton.jit`` helpers (``tl.zeros``, ``tl.sum``, ``tl.max``, ``tl.cdiv`` are ``@jit``
    functions of Triton's library: use ``tl.full`` and ``tl.reduce`` with an own combine
    function). Raises ImportError without Triton.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.loader is None:
        raise ImportError(f"no kernel module {module!r}")
    import triton.language  # noqa: F401  (Triton's own library compiled as usual: imported first)

    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old
    return copy


def on_device(x: Any) -> contextlib.AbstractContextManager:
    """The CUDA device context of ``x`` for a kernel launch (a no-op for CPU tensors)."""
    if getattr(x, "is_cuda", False):
        import torch

        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


BLOCK = 256
"""Neurons per Triton program (as SpikingJelly's neuron kernels)."""
