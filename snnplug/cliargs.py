"""Argument types and error reporting for the ``snnplug`` command line.

Every value is validated while parsing, so a bad option is refused before anything loads, and
every error is one line on stderr with exit status 2 (``--debug`` prints the traceback too).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from snnplug.checks import MAX_STEPS

EXIT_ERROR = 2


class DefaultsHelp(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends ``(default: X)`` to every option with a
    default (options whose default is worded in their help say it there)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``snnplug train: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def nonnegative_int(text: str) -> int:
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {v}")
    return v


def steps(text: str) -> int:
    v = positive_int(text)
    if v > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"at most {MAX_STEPS} time steps, got {v}")
    return v


def steps_list(text: str) -> list[int]:
    """Comma-separated time steps, each in ``1..MAX_STEPS``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated time steps, got {text!r}")
    return [steps(p) for p in parts]


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return v


def device(text: str) -> str:
    """A torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has no CUDA device; use --device cpu")
        if dev.index is not None and dev.index >= n:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {n} CUDA device(s) (0..{n - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: snnplug runs on cpu, cuda or mps")
    return text


def key_value(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (``tau=2.0``, ``norm=false``) or a plain string."""
    k, sep, v = text.partition("=")
    if not sep or not k.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


def accepted_options(factory: Callable[..., Any], built: Any = None) -> list[str]:
    """The keyword options a plugin factory takes: its signature's, or (for ``**kw`` factories)
    those of the object it builds and its ``config()``."""
    names: set[str] = set()
    targets: list[Any] = [factory]
    if built is not None:
        targets.append(type(built))
        if hasattr(built, "config"):
            names |= set(built.config())
    for target in targets:
        try:
            params = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            continue
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    # not options a user sets: the model/data arguments, and the input layout (from the dataset)
    return sorted(names - {"self", "model", "ann", "calibration", "frames"})


def build_plugin(family: str, name: str, make: Callable[..., Any], options: dict[str, Any]) -> Any:
    """``make(**options)``; unknown option names are listed, invalid values are reported with the
    plugin's own message, as :class:`~snnplug.errors.SnnplugError` (one CLI line)."""
    from snnplug.errors import PluginOptionError

    try:
        return make(**options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise PluginOptionError(f"{family} {name!r}: {exc}") from exc
        try:
            known = accepted_options(make, make())
        except Exception:  # the defaults themselves fail: list nothing rather than hide the error
            known = []
        unknown = sorted(set(options) - set(known)) if known else [str(exc).rsplit(" ", 1)[-1].strip("'")]
        raise PluginOptionError(
            f"unknown {family} option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {name!r}; "
            f"its options: {', '.join(known) or '(none)'}") from None
    except AssertionError as exc:  # a library's bare assert on a value: name the options given
        raise PluginOptionError(f"{family} {name!r} refused the options {options} "
                                f"({exc or 'an assertion failed in the library'})") from exc
    except ValueError as exc:
        raise PluginOptionError(f"{family} {name!r}: {exc}") from exc


def report(exc: BaseException, debug: bool) -> int:
    """Print ``snnplug: error: ...`` (one line; the traceback first with ``--debug``); exit status."""
    from snnplug.errors import SnnplugError

    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        print("snnplug: interrupted", file=sys.stderr)
        return 130
    msg = " ".join(str(exc).split()) or "(no message)"
    if not isinstance(exc, SnnplugError):
        msg = f"{type(exc).__name__}: {msg}" + ("" if debug else " (run with --debug for the traceback)")
    print(f"snnplug: error: {msg}", file=sys.stderr)
    return EXIT_ERROR
