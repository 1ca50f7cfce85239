"""Exceptions raised by snnplug. Each message names the problem and the fix."""


class SnnplugError(Exception):
    """Base class of snnplug's errors."""


class UnknownPluginError(SnnplugError, KeyError):
    """No plugin of that family has that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PluginConflictError(SnnplugError):
    """Two distributions register the same name in one family."""


class PluginOptionError(SnnplugError, ValueError):
    """A plugin was given an option it does not know, or a value it refuses."""


class ShapeError(SnnplugError, ValueError):
    """A tensor has the wrong rank or layout (snnplug expects time-major ``[T, B, ...]``)."""


class TimeStepError(SnnplugError, ValueError):
    """The number of time steps disagrees with what a module was built for."""


class DataError(SnnplugError, FileNotFoundError):
    """A dataset is unknown or its files are missing."""


class CheckpointError(SnnplugError):
    """A checkpoint is corrupt, truncated or from another run/model."""


class UnsupportedModuleError(SnnplugError, TypeError):
    """A model holds a module that an adapter or converter cannot handle."""


class SettingChangedWarning(UserWarning):
    """``snnplug.apply`` replaced a neuron but could not keep one of its settings (the message
    names the setting, the new value and why); ``apply(..., strict=True)`` raises instead."""
