"""snnTorch's surrogate gradients, reproduced without importing snnTorch.

Every snnTorch surrogate fires with the Heaviside step ``S = 1[u > 0]`` (``(u > 0).float()``,
so ``u = mem - threshold`` fires only strictly above threshold) and differs only in its
backward ``dS/du``. :class:`Surrogate` holds the name and parameters and gives

* ``grad(u)``: ``dS/du`` written with the same operations as ``snntorch.surrogate``;
* ``spike(u)``: the step with that backward (a ``torch.autograd.Function``).

``from_snntorch(fn)`` reads the closure snnTorch builds (``surrogate.atan(alpha=2.0)`` returns
``atan.<locals>.inner`` holding ``alpha``). Supported (snnTorch 0.9-1.0 formulas):

=====================  =====================================================
``atan(alpha=2)``      ``alpha/2 / (1 + (pi/2 * alpha * u)^2)`` (snnTorch's default)
``fast_sigmoid(s=25)`` ``1 / (s*|u| + 1)^2``
``sigmoid(s=25)``      ``s * exp(-s*u) / (exp(-s*u) + 1)^2``
``triangular(th=1)``   ``th`` for ``u < 0``, ``-th`` for ``u >= 0`` (as snnTorch implements it)
``straight_through``   ``1``
``heaviside``          ``1[u > 0]``
``SFS(s=25, B=1)``     ``1 / (s*|u| + 1)^2 * 1[u > B]``
``spike_rate_escape``  ``slope * exp(-beta * |u - 1|)``
``none``               ``0`` (``surrogate_disable=True``: spikes carry no gradient)
=====================  =====================================================

Other callables (``SSO``, ``custom_surrogate``, user functions) cannot be read; the node then
calls the callable itself (:class:`CallableSurrogate`), which is exact but needs snnTorch and
uses the slower autograd path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

KNOWN = ("atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through", "heaviside",
         "sfs", "spike_rate_escape", "none")
_QUALNAMES = {
    "atan": "atan", "fast_sigmoid": "fast_sigmoid", "sigmoid": "sigmoid", "triangular": "triangular",
    "straight_through_estimator": "straight_through", "heaviside": "heaviside", "SFS": "sfs",
    "spike_rate_escape": "spike_rate_escape",
}
_DEFAULTS: dict[str, dict[str, float]] = {
    "atan": {"alpha": 2.0}, "fast_sigmoid": {"slope": 25.0}, "sigmoid": {"slope": 25.0},
    "triangular": {"threshold": 1.0}, "straight_through": {}, "heaviside": {},
    "sfs": {"slope": 25.0, "B": 1.0}, "spike_rate_escape": {"beta": 1.0, "slope": 25.0}, "none": {},
}


def heaviside(u: torch.Tensor) -> torch.Tensor:
    """snnTorch's forward step: ``(u > 0).float()`` (float32 whatever ``u``'s dtype)."""
    return (u > 0).float()


@dataclass(frozen=True)
class Surrogate:
    """A snnTorch surrogate by name and parameters (see the module table)."""

    name: str = "atan"
    params: tuple[tuple[str, float], ...] = (("alpha", 2.0),)

    def __post_init__(self) -> None:
        if self.name not in KNOWN:
            raise ValueError(f"unknown surrogate {self.name!r}; known: {', '.join(KNOWN)}")
        expected = set(_DEFAULTS[self.name])
        if {k for k, _ in self.params} != expected:
            raise ValueError(f"surrogate {self.name!r} takes parameters {sorted(expected)}, "
                             f"got {[k for k, _ in self.params]}")

    @classmethod
    def make(cls, name: str, **params: float) -> Surrogate:
        """``Surrogate.make("atan", alpha=2.0)``; missing parameters take snnTorch's defaults."""
        if name not in _DEFAULTS:
            raise ValueError(f"unknown surrogate {name!r}; known: {', '.join(KNOWN)}")
        unknown = set(params) - set(_DEFAULTS[name])
        if unknown:
            raise TypeError(f"surrogate {name!r} has no parameter(s) {sorted(unknown)}")
        merged = {**_DEFAULTS[name], **params}
        return cls(name, tuple(sorted(merged.items())))

    @property
    def kw(self) -> dict[str, float]:
        return dict(self.params)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """``dS/du`` at ``u = mem - threshold`` (same arithmetic as snnTorch's backward)."""
        p = self.kw
        n = self.name
        if n == "atan":  # a/2 / (1 + (pi/2*a*u)^2), in place after the first product
            a = p["alpha"]
            return (u * (math.pi / 2 * a)).pow_(2).add_(1).reciprocal_().mul_(a / 2)
        if n == "fast_sigmoid":  # 1 / (s*|u| + 1)^2
            return torch.abs(u).mul_(p["slope"]).add_(1.0).pow_(2).reciprocal_()
        if n == "sigmoid":
            s = p["slope"]
            ex = torch.exp(-s * u)
            return s * ex / ((ex + 1) ** 2)
        if n == "triangular":
            th = p["threshold"]
            return torch.where(u >= 0, torch.full_like(u, -th), torch.full_like(u, th))
        if n == "straight_through":
            return torch.ones_like(u)
        if n == "heaviside":
            return heaviside(u).to(u.dtype)
        if n == "sfs":
            return 1.0 / (p["slope"] * torch.abs(u) + 1.0) ** 2 * (u > p["B"]).to(u.dtype)
        if n == "spike_rate_escape":
            return p["slope"] * torch.exp(-p["beta"] * torch.abs(u - 1))
        return torch.zeros_like(u)  # "none"

    def grad_(self, u: torch.Tensor) -> torch.Tensor:
        """:meth:`grad`, computed in place in ``u`` where the formula allows (``u`` is consumed).

        Same operations in the same order, so the same bits as :meth:`grad`; saves a full-size
        allocation (and its page faults) in the fused neurons' backward.
        """
        p = self.kw
        if self.name == "atan":
            a = p["alpha"]
            return u.mul_(math.pi / 2 * a).pow_(2).add_(1).reciprocal_().mul_(a / 2)
        if self.name == "fast_sigmoid":
            return u.abs_().mul_(p["slope"]).add_(1.0).pow_(2).reciprocal_()
        return self.grad(u)

    def spike(self, u: torch.Tensor) -> torch.Tensor:
        """``1[u > 0]`` whose backward is :meth:`grad`."""
        if self.name == "none":
            return heaviside(u)  # no graph, as snnTorch's surrogate bypass
        return _SurrogateSpike.apply(u, self)

    def to_snntorch(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The equivalent ``snntorch.surrogate`` callable (imports snnTorch)."""
        from snntorch import surrogate as s

        p = self.kw
        table: dict[str, Callable[[], Any]] = {
            "atan": lambda: s.atan(alpha=p["alpha"]),
            "fast_sigmoid": lambda: s.fast_sigmoid(slope=p["slope"]),
            "sigmoid": lambda: s.sigmoid(slope=p["slope"]),
            "triangular": lambda: s.triangular(threshold=p["threshold"]),
            "straight_through": s.straight_through_estimator,
            "heaviside": s.heaviside,
            "sfs": lambda: s.SFS(slope=p["slope"], B=p["B"]),
            "spike_rate_escape": lambda: s.spike_rate_escape(beta=p["beta"], slope=p["slope"]),
        }
        if self.name == "none":
            raise ValueError("surrogate 'none' maps to snnTorch's surrogate_disable=True, not a callable")
        return table[self.name]()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.name}({args})"


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, sur: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.sur = sur
        return heaviside(u)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return ctx.sur.grad(u) * grad_out, None


@dataclass(frozen=True)
class CallableSurrogate:
    """An snnTorch surrogate that cannot be read (``SSO``, ``custom_surrogate``, user code):
    the callable itself is called. Exact by construction; only the autograd path supports it."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    name: str = "callable"

    def spike(self, u: torch.Tensor) -> torch.Tensor:
        return self.fn(u)

    def to_snntorch(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.fn

    def __repr__(self) -> str:
        return f"callable({getattr(self.fn, '__qualname__', self.fn)!r})"


AnySurrogate = Surrogate | CallableSurrogate


def from_snntorch(neuron: Any) -> AnySurrogate:
    """The surrogate of an snnTorch neuron (reads ``neuron.spike_grad``'s closure)."""
    if getattr(neuron, "surrogate_disable", False):
        return Surrogate.make("none")
    fn = neuron.spike_grad
    qual = getattr(fn, "__qualname__", "")
    mod = getattr(fn, "__module__", "")
    base = qual.split(".<locals>")[0]
    if mod == "snntorch.surrogate" and qual.endswith("<locals>.inner") and base in _QUALNAMES:
        name = _QUALNAMES[base]
        cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()),
                         strict=True))
        params = {k: float(cells[k]) for k in _DEFAULTS[name]}
        return Surrogate.make(name, **params)
    return CallableSurrogate(fn)
