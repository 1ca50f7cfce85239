"""The plugin registry: a pluggy PluginManager fed by the ``snnplug`` entry-point group.

Built-in plugins register through the same entry points a third-party package would use.
``SNNPLUG_LOAD_PLUGINS`` (comma-separated entry-point names) loads only those;
``SNNPLUG_DISABLE_PLUGINS`` skips those; an item ``distribution:name`` (e.g.
``evil-dist:dsr``) selects only that distribution's entry point of that name, a bare ``name``
every entry point called so.

Isolation: a plugin that fails to import or whose hook raises -- anything, ``SystemExit`` and
``KeyboardInterrupt`` included -- whose hookimpl has a wrong signature (pluggy's
``PluginValidationError``), or that returns something other than a registration record is
reported by name (a warning, and :attr:`Registry.failures`) and the others keep working. An
entry point named like one already loaded (a third-party ``dsr`` beside the built-in one) is
refused the same way, naming both distributions and the ``SNNPLUG_DISABLE_PLUGINS`` value that
disables it; built-in plugins (distribution ``snnplug``) load first. An import slower than
``SNNPLUG_SLOW_IMPORT_S`` seconds (default 5) is reported in :attr:`Registry.slow`. Two plugins
registering one name in one family raise :class:`~snnplug.errors.PluginConflictError` naming
both distributions.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import pluggy

from snnplug import hookspecs
from snnplug.errors import PluginConflictError, UnknownPluginError
from snnplug.types import FAMILIES, _Registration

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "snnplug"
BUILTIN_DISTRIBUTION = "snnplug"
HOOKS = {
    "neuron": "snnplug_neurons",
    "normalizer": "snnplug_normalizers",
    "strategy": "snnplug_training_strategies",
    "converter": "snnplug_converters",
}


@dataclass(frozen=True)
class PluginFailure:
    """One plugin that could not be used, and why."""

    plugin: str
    distribution: str
    stage: str  # "import" or the hook name
    error: str


@dataclass(frozen=True)
class SlowPlugin:
    """A plugin whose import took longer than ``SNNPLUG_SLOW_IMPORT_S``."""

    plugin: str
    distribution: str
    seconds: float


def _selected(names: set[str], ep_name: str, dist: str) -> bool:
    """``name`` or ``distribution:name`` in ``names``."""
    return ep_name in names or f"{dist}:{ep_name}" in names


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


class Registry:
    """Plugins loaded into one pluggy manager, indexed per family by name."""

    def __init__(self, *, load_entry_points: bool = True, entry_points: Iterable[Any] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.slow: list[SlowPlugin] = []
        self._dist: dict[str, str] = {}  # plugin name -> distribution
        self._index: dict[str, dict[str, _Registration]] | None = None
        if load_entry_points:
            self._load_entry_points(entry_points)

    # -- loading -------------------------------------------------------------------------
    def _load_entry_points(self, entry_points: Iterable[Any] | None = None) -> None:
        only = _env_names("SNNPLUG_LOAD_PLUGINS")
        disabled = _env_names("SNNPLUG_DISABLE_PLUGINS") or set()
        eps = md.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
        slow_after = float(os.environ.get("SNNPLUG_SLOW_IMPORT_S", "5"))

        def dist_of(ep: Any) -> str:
            d = getattr(ep, "dist", None)
            return d.name if d is not None else "?"

        # built-in plugins first: a third-party entry point reusing a built-in name is the one refused
        for ep in sorted(eps, key=lambda e: dist_of(e) != BUILTIN_DISTRIBUTION):
            dist = dist_of(ep)
            if (only is not None and not _selected(only, ep.name, dist)) or _selected(disabled, ep.name, dist):
                continue
            if self.pm.get_plugin(ep.name) is not None:
                self._fail(ep.name, dist, "register",
                           f"entry point {ep.name!r} of {dist} has the name of the plugin already loaded from "
                           f"{self._dist.get(ep.name, '?')}; it was not loaded. Rename it in {dist}'s entry "
                           f"points, or choose with SNNPLUG_DISABLE_PLUGINS={dist}:{ep.name} (or "
                           f"{self._dist.get(ep.name, '?')}:{ep.name})")
                continue
            t0 = time.perf_counter()
            try:
                obj = ep.load()
            except BaseException as exc:  # noqa: BLE001 - sys.exit/KeyboardInterrupt in a plugin too
                self._fail(ep.name, dist, "import", exc)
                continue
            finally:
                seconds = time.perf_counter() - t0
                if seconds > slow_after:
                    self.slow.append(SlowPlugin(ep.name, dist, round(seconds, 2)))
                    warnings.warn(f"snnplug plugin {ep.name!r} ({dist}) took {seconds:.1f} s to import "
                                  f"(more than SNNPLUG_SLOW_IMPORT_S={slow_after:g})", stacklevel=2)
            try:
                self.register(obj, name=ep.name, distribution=dist)
            except (pluggy.PluginValidationError, ValueError) as exc:  # wrong hookimpl signature, same module twice
                self._fail(ep.name, dist, "register", exc)

    def register(self, plugin: Any, *, name: str, distribution: str = "<local>") -> None:
        """Register a module or object holding ``@hookimpl`` functions (in-process plugins)."""
        if self.pm.get_plugin(name) is not None:
            raise PluginConflictError(
                f"a plugin named {name!r} is already registered (from "
                f"{self._dist.get(name, '?')}); {distribution} tries to register it again"
            )
        self.pm.register(plugin, name=name)
        self._dist[name] = distribution
        self._index = None

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._dist.pop(name, None)
        self._index = None

    def _fail(self, plugin: str, dist: str, stage: str, exc: BaseException | str) -> None:
        err = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.failures.append(PluginFailure(plugin, dist, stage, err))
        warnings.warn(f"snnplug plugin {plugin!r} ({dist}) failed at {stage}: {err}", stacklevel=3)

    # -- indexing ------------------------------------------------------------------------
    def _build_index(self) -> dict[str, dict[str, _Registration]]:
        index: dict[str, dict[str, _Registration]] = {f: {} for f in HOOKS}
        for family, hook_name in HOOKS.items():
            cls = FAMILIES[family]
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                dist = self._dist.get(plugin, "<local>")
                try:
                    records = list(impl.function() or ())
                except BaseException as exc:  # noqa: BLE001 - sys.exit/KeyboardInterrupt in a hook too
                    self._fail(plugin, dist, hook_name, exc)
                    continue
                for rec in records:
                    if not isinstance(rec, cls):
                        self._fail(plugin, dist, hook_name,
                                   f"returned {type(rec).__name__}, expected {cls.__name__}")
                        continue
                    rec = replace(rec, distribution=dist)
                    prior = index[family].get(rec.name)
                    if prior is not None:
                        raise PluginConflictError(
                            f"{family} {rec.name!r} is registered twice: by {prior.distribution} "
                            f"and by {dist} (plugin {plugin!r}); uninstall one or disable it with "
                            f"SNNPLUG_DISABLE_PLUGINS"
                        )
                    index[family][rec.name] = rec
        return index

    @property
    def index(self) -> dict[str, dict[str, _Registration]]:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def get(self, family: str, name: str) -> _Registration:
        """The registration ``name`` of ``family``; unknown names list the known ones."""
        if family not in HOOKS:
            raise ValueError(f"unknown plugin family {family!r}; families: {sorted(HOOKS)}")
        found = self.index[family].get(name)
        if found is None:
            known = ", ".join(sorted(self.index[family])) or "none installed"
            hint = ""
            if self.failures:
                hint = " (failed to load: " + ", ".join(sorted({f.plugin for f in self.failures})) + ")"
            raise UnknownPluginError(f"unknown {family} {name!r}; known: {known}{hint}")
        return found

    def names(self, family: str) -> list[str]:
        return sorted(self.index[family])

    def all(self) -> Iterable[_Registration]:
        for family in HOOKS:
            yield from self.index[family].values()


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (the next call reloads entry points and environment)."""
    global _REGISTRY
    _REGISTRY = None


def list_plugins() -> list[dict[str, str]]:
    """One dict per registration: family, name, distribution, paper, summary."""
    return [
        {"family": r.family, "name": r.name, "distribution": r.distribution,
         "paper": r.paper, "summary": r.summary}
        for r in get_registry().all()
    ]
