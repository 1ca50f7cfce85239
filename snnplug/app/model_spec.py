"""A user's model named by an import string, ``package.module:factory`` (as uvicorn and entry points).

:func:`load_model` imports ``package.module`` (the current folder is searched first, as
``python -m`` does), looks up ``factory`` (dots walk attributes: ``module:Builder.small``) and

* calls it with the ``--model-arg key=value`` keyword arguments when it is a function or a class
  (``nn.Module`` subclasses included: ``module:Net`` builds ``Net()``), or
* takes it as it is when it already is an ``nn.Module`` instance (``module:net``, as the snnTorch
  tutorials define ``net = nn.Sequential(...)``; it is trained in place, in this process only).

Every failure raises :class:`ModelSpecError` naming the import string, the problem and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from torch import nn

from snnplug.errors import SnnplugError

FORM = "package.module:factory"


class ModelSpecError(SnnplugError, ValueError):
    """``--model`` does not name an importable model factory (or the factory's result is no model)."""


def split_spec(spec: str) -> tuple[str, str]:
    """``"pkg.mod:attr.sub"`` -> ``("pkg.mod", "attr.sub")``; refuses other forms."""
    module, sep, attr = spec.partition(":")
    if module.endswith(".py"):
        raise ModelSpecError(f"--model {spec!r} names a file; name the module instead, without .py and with dots for "
                             f"folders: --model {module[:-3].replace('/', '.')}:{attr or 'factory'} (run from the "
                             f"folder that holds it)")
    parts = [*module.split("."), *attr.split(".")]
    if not sep or not all(p.isidentifier() for p in parts):
        raise ModelSpecError(
            f"--model {spec!r} is not an import string; write it as {FORM} (a Python module on the path, a "
            f"colon, then the function, class or nn.Module in it), e.g. --model mynets:build_net")
    return module, attr


def _import(module: str, spec: str) -> Any:
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)  # as `python -m` and uvicorn: modules in the current folder import
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ModelSpecError(
                f"--model {spec!r}: no module named {exc.name!r} (searched the current folder {here} and "
                f"sys.path); run from the folder that holds {module.replace('.', '/')}.py, add its folder to "
                f"PYTHONPATH, or pip install its package") from None
        raise ModelSpecError(f"--model {spec!r}: importing {module!r} failed because it imports {exc.name!r}, "
                             f"which is not installed; install it (pip install ...) and retry") from exc
    except Exception as exc:
        raise ModelSpecError(f"--model {spec!r}: importing {module!r} raised {type(exc).__name__}: {exc}; "
                             f"fix the module (run `python -c \"import {module}\"` to see the traceback)") from exc


def _attribute(obj: Any, attr: str, module: str, spec: str) -> Any:
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(n for n, v in vars(obj).items() if not n.startswith("_") and (
                isinstance(v, nn.Module) or ((inspect.isfunction(v) or inspect.isclass(v))
                                             and getattr(v, "__module__", None) == module)))
            raise ModelSpecError(
                f"--model {spec!r}: {module!r} has no attribute {attr!r}; name a function, class or nn.Module "
                f"defined there after the colon (it defines: {', '.join(found) or 'none'})")
        obj = getattr(obj, part)
    return obj


def _call(factory: Any, kwargs: dict[str, Any], spec: str) -> Any:
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"
        raise ModelSpecError(
            f"--model {spec!r}: cannot call it with {given} ({exc}); pass its arguments as "
            f"--model-arg name=value (repeatable, JSON values)") from None
    except ValueError:  # no signature to inspect (a builtin): just call it
        pass
    try:
        return factory(**kwargs)
    except Exception as exc:
        raise ModelSpecError(f"--model {spec!r}: calling it raised {type(exc).__name__}: {exc}; fix the factory "
                             f"or its --model-arg values (--debug shows the traceback)") from exc


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """The model named by ``spec`` (see the module doc); raises :class:`ModelSpecError`."""
    kwargs = dict(kwargs or {})
    module, attr = split_spec(spec)
    obj = _attribute(_import(module, spec), attr, module, spec)
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ModelSpecError(f"--model {spec!r} is an nn.Module instance, which takes no --model-arg; point "
                                 f"--model at the function or class that builds it to pass arguments")
        return obj
    if not callable(obj):
        raise ModelSpecError(f"--model {spec!r} is a {type(obj).__name__}, not callable; point it at a function "
                             f"or class that returns the model (or at an nn.Module)")
    model = _call(obj, kwargs, spec)
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"--model {spec!r} returned a {type(model).__name__}, not a torch.nn.Module; the "
                             f"factory must return the snnTorch model itself (e.g. nn.Sequential(...))")
    return model
