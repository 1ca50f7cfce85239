"""The application layer: the ``snnplug`` command (:mod:`.cli`), ``snnplug run`` (:mod:`.run`),
``snnplug compare`` (:mod:`.compare`), their reports and plots.

The library (registry, types, surgery, strategies, engine, data, backends, adapters) never
imports from here.
"""
