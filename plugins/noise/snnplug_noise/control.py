"""Find and (re)configure the noisy neurons of a model: stage, alpha, beta, seed.

Per-layer seeds are ``seed + i`` (i = the layer's index in ``model.modules()`` order), so layers
of equal shape never share a noise stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from snnplug_noise.neuron import NoisyLIFNode


def noisy_nodes(model: nn.Module) -> list[NoisyLIFNode]:
    """The model's :class:`NoisyLIFNode` layers in module order."""
    return [m for m in model.modules() if isinstance(m, NoisyLIFNode)]


def configure(model: nn.Module, *, stage: int | None = None, alpha: float | None = None,
              beta: float | None = None, seed: int | None | str = "keep",
              T: int | None | str = "keep") -> list[NoisyLIFNode]:
    """Set every noisy neuron's stage/alpha/beta/T and seed (``seed + i`` for layer ``i``)."""
    nodes = noisy_nodes(model)
    for i, node in enumerate(nodes):
        s = seed + i if isinstance(seed, int) and not isinstance(seed, bool) else seed
        node.configure(stage=stage, alpha=alpha, beta=beta, seed=s, T=T)
    return nodes


@contextmanager
def configured(model: nn.Module, **kw: object) -> Iterator[list[NoisyLIFNode]]:
    """``configure(model, **kw)`` for the duration of a ``with`` block, then restore."""
    nodes = noisy_nodes(model)
    saved = [n.settings() for n in nodes]
    try:
        yield configure(model, **kw)  # type: ignore[arg-type]
    finally:
        for n, st in zip(nodes, saved):
            n.configure(**st)
