"""Frozen, keyword-only registration records returned by the hooks in :mod:`snnplug.hookspecs`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

Factory = Callable[..., Any]


@dataclass(frozen=True, kw_only=True)
class _Registration:
    """Fields shared by every registration.

    ``name`` is what users type (``snnplug.neuron("dsr-if")``); ``paper`` cites the source;
    ``summary`` is one line for ``snnplug plugins``. ``distribution`` is filled in by the
    registry (the installed distribution that provided the entry point).
    """

    family: ClassVar[str] = ""
    name: str
    factory: Factory
    paper: str
    summary: str = ""
    distribution: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"{type(self).__name__}.name must be a non-empty string, got {self.name!r}")
        if not callable(self.factory):
            raise TypeError(f"{type(self).__name__} {self.name!r}: factory must be callable")

    @property
    def doc(self) -> str:
        """The factory's docstring (contract tests require one)."""
        return (getattr(self.factory, "__doc__", None) or "").strip()


@dataclass(frozen=True, kw_only=True)
class NeuronPlugin(_Registration):
    """A multi-step neuron. ``factory(**kw)`` builds a module mapping ``[T, B, ...]`` to spikes.

    ``replaces`` lists the class names of framework neurons that :func:`snnplug.apply` swaps for
    this one. ``from_module(old, **kw)``, when given, builds the replacement from the module it
    replaces (to carry over thresholds, say); otherwise ``factory(**kw)`` is used.
    """

    family: ClassVar[str] = "neuron"
    replaces: tuple[str, ...] = ("IFNode", "LIFNode")
    from_module: Factory | None = None
    #: SpikingJelly's own implementation of the method, for ``snnplug compare``:
    #: ``reference(ours, T)`` builds it with the settings of one of our modules
    reference: Factory | None = None
    #: the settings ``snnplug compare`` runs that comparison with (e.g. the paper's threshold)
    reference_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, kw_only=True)
class NormalizerPlugin(_Registration):
    """A normalizer. ``factory(num_features, **kw)`` builds one standalone;
    ``from_module(old_bn, **kw)`` builds the replacement for a BatchNorm layer found by
    :func:`snnplug.apply` (types in ``replaces``; default BatchNorm1d/2d, resolved lazily)."""

    family: ClassVar[str] = "normalizer"
    from_module: Factory | None = None
    replaces: tuple[str, ...] = ("BatchNorm1d", "BatchNorm2d")
    #: as for :class:`NeuronPlugin`: SpikingJelly's implementation, ``reference(ours, T)``
    reference: Factory | None = None
    reference_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, kw_only=True)
class StrategyPlugin(_Registration):
    """A training strategy. ``factory(**kw)`` returns a :class:`snnplug.strategies.Strategy`.

    What ``snnplug run`` needs to know (all recorded in its ``results.json``):

    * ``in_default_run``: ``snnplug run`` without ``--methods`` runs it;
    * ``run_settings``: factory keywords for a short run on small data (e.g. a larger learning
      rate than a 200-epoch paper schedule, a shorter T), applied on top of the defaults;
    * ``run_epochs``: epochs of that run (None: the strategy's ``default_epochs``);
    * ``shared_backbone``: the factory takes ``channels=`` and ``hidden=`` and builds the
      dataset's shared backbone (:func:`snnplug.models.backbone_for`) with the method's own
      neurons, normaliser, encoding and readout, so methods compare like for like;
    * ``own_network``: when it cannot, why (shown in the report next to the shared backbone).
    """

    family: ClassVar[str] = "strategy"
    in_default_run: bool = False
    run_settings: dict[str, Any] = field(default_factory=dict, hash=False)
    run_epochs: int | None = None
    shared_backbone: bool = False
    own_network: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.run_settings, dict) or not all(isinstance(k, str) for k in self.run_settings):
            raise TypeError(f"StrategyPlugin {self.name!r}: run_settings must be a dict of keyword arguments")
        if self.run_epochs is not None and (isinstance(self.run_epochs, bool) or not isinstance(self.run_epochs, int)
                                            or self.run_epochs < 1):
            raise ValueError(f"StrategyPlugin {self.name!r}: run_epochs must be a positive int or None, "
                             f"got {self.run_epochs!r}")
        if self.shared_backbone and self.own_network:
            raise ValueError(f"StrategyPlugin {self.name!r}: give own_network (why not) only with "
                             f"shared_backbone=False")


@dataclass(frozen=True, kw_only=True)
class ConverterPlugin(_Registration):
    """A converter. ``factory(model, **kw)`` returns a multi-step SNN mapping ``[T,B,...]`` to
    ``[T,B,classes]``. With ``calibrates=True`` the CLI passes ``calibration=<train loader>``."""

    family: ClassVar[str] = "converter"
    #: the converter reads data (``calibration=`` a loader or tensor) to set thresholds
    calibrates: bool = False


FAMILIES: dict[str, type[_Registration]] = {
    "neuron": NeuronPlugin,
    "normalizer": NormalizerPlugin,
    "strategy": StrategyPlugin,
    "converter": ConverterPlugin,
}
