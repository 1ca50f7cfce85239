"""Adapters between snnplug/SpikingJelly and other SNN frameworks.

* :mod:`snnplug.adapters.snntorch`: snnTorch models <-> SpikingJelly multi-step models.

Nothing is imported eagerly: ``import snnplug.adapters.snntorch`` does not import snnTorch.
"""
