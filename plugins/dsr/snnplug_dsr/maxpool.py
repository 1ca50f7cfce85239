"""Max pooling of spike trains in DSR's representation space (1-, 2- and 3-d).

Forward (the spiking simulation): max pooling of the spikes at every step, as in the model,
``y_t[o] = max_{i in window(o)} x_t[i]``.

Representation: the rate of the pooled train, ``r_y[o] = mean_t y_t[o]`` (measured, not
``max_i mean_t x_t[i]``: the max of rates can be smaller, the pooled train fires whenever any
input of the window fires).

Gradient. The per-step backward routes ``dL/dy_t[o]`` to the window element that was the
(first) maximum at step ``t``, ``i_t(o)``. In DSR every gradient arriving at a spiking layer's
output is the same at all steps, ``dL/dy_t = g/T``, whenever the layers between the max pool
and the next neurons are time-linear (convolution, linear, average pooling, residual adds, batch
norm in eval mode). The per-step gradient summed over time is then

    dL/dx[i] = sum_o g[o] * c[o, i] / T,   c[o, i] = #{t : i_t(o) = i}

i.e. the gradient is routed to each window element in proportion to the fraction of steps it
was the maximum. This is the time mean of the per-step Jacobians, so it equals the per-step
backward exactly under that condition (tests: ``plugins/dsr/tests/test_dsr_maxpool.py``); when
a training-mode batch norm follows, the per-step gradient varies over time and the two differ
by the same covariance term as for batch norm alone (docs/dsr.md). Alternatives such as
routing everything to the element of largest rate (or first spike) are cheaper to record but
are not the time mean of the per-step Jacobian: with two inputs that spike alternately both
receive half of the gradient per step, the largest-rate rule gives all of it to one.

The same holds for ``MaxPool1d``/``MaxPool3d``: ``i`` and ``o`` index positions along one or
three spatial axes and the window has ``k_1 * ... * k_d`` offsets.

Recording ``c`` costs ``k_1*...*k_d`` small integers per pooled output (for the usual 3x3/stride 2
or 2x2/stride 2 pooling about 2.25x or 1x the input size in int16), independent of ``T``.
Ties (common: spikes are binary) are broken exactly as the per-step ``max_pool2d`` breaks them,
because ``c`` is counted from its own indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from torch import nn

POOLS = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_FUNCS = {1: Fn.max_pool1d, 2: Fn.max_pool2d, 3: Fn.max_pool3d}


def pool_dims(m: nn.Module) -> int | None:
    """1, 2 or 3 for ``nn.MaxPool1d/2d/3d`` (and subclasses such as SpikingJelly's layers)."""
    for cls, d in POOLS.items():
        if isinstance(m, cls):
            return d
    return None


def _tuple(v, d: int) -> tuple[int, ...]:
    return (int(v),) * d if isinstance(v, int) else tuple(int(a) for a in v)


@dataclass
class PoolGeometry:
    """Kernel, stride, padding, dilation of a ``d``-dimensional max pooling (``nn.MaxPool{d}d``)."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool

    @property
    def dims(self) -> int:
        return len(self.kernel)

    @classmethod
    def of(cls, m: nn.Module) -> PoolGeometry:
        d = pool_dims(m)
        if d is None:
            raise TypeError(f"not a max pooling: {type(m).__name__}")
        return cls(_tuple(m.kernel_size, d), _tuple(m.stride if m.stride is not None else m.kernel_size, d),
                   _tuple(m.padding, d), _tuple(m.dilation, d), bool(m.ceil_mode))

    def pool(self, x: torch.Tensor, indices: bool = False):
        return _FUNCS[self.dims](x, self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode,
                                 return_indices=indices)


def _strides(shape: tuple[int, ...]) -> list[int]:
    """Row-major strides of a flat index over ``shape``."""
    return [math.prod(shape[k + 1:]) for k in range(len(shape))]


class MaxPoolRecord:
    """Per-window argmax counts ``c[o, j]`` (``j`` = offset in the window) and the output's sum
    over time, accumulated chunk by chunk over one simulation of ``T`` steps."""

    def __init__(self, geo: PoolGeometry, T: int) -> None:
        self.geo, self.T = geo, T
        self.counts: torch.Tensor | None = None  # [N, C, K, prod(out)]
        self.sum_out: torch.Tensor | None = None  # [N, C, *out]
        self.in_size: tuple[int, ...] | None = None
        self.steps = 0

    def _offsets(self, idx: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """Flat input index of each output's maximum (torch's, row-major over the spatial axes)
        -> flat offset in its window (row-major over the kernel)."""
        g, d = self.geo, self.geo.dims
        out = idx.shape[-d:]
        j = torch.zeros_like(idx)
        for k, (st_in, st_k) in enumerate(zip(_strides(size), _strides(g.kernel))):
            shape = [1] * d
            shape[k] = out[k]
            start = (torch.arange(out[k], device=idx.device) * g.stride[k] - g.padding[k]).view(shape)
            coord = torch.div(idx, st_in, rounding_mode="floor") % size[k]
            j += torch.div(coord - start, g.dilation[k], rounding_mode="floor") * st_k
        return j

    def add(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` ([n, N, C, *spatial], n steps), count the maxima, return the pooled steps."""
        d, n = self.geo.dims, x.shape[0]
        size = tuple(x.shape[-d:])
        y, idx = self.geo.pool(x.flatten(0, 1), indices=True)
        y = y.view(n, *x.shape[1:3], *y.shape[-d:])
        idx = idx.view(n, *x.shape[1:3], *idx.shape[-d:])
        K, P = math.prod(self.geo.kernel), math.prod(y.shape[-d:])
        if self.counts is None:
            dtype = torch.int16 if self.T < 2 ** 15 else torch.int32
            self.counts = torch.zeros((*y.shape[1:3], K, P), dtype=dtype, device=x.device)
            self.in_size = size
        ones = torch.ones((*y.shape[1:3], 1, P), dtype=self.counts.dtype, device=x.device)
        j = self._offsets(idx, size).flatten(-d).unsqueeze(3)  # [n, N, C, 1, P]
        for t in range(n):
            self.counts.scatter_add_(2, j[t], ones)
        s = y.sum(0)
        self.sum_out = s if self.sum_out is None else self.sum_out + s
        self.steps += n
        return y

    def positions(self) -> torch.Tensor:
        """Flat input index of every (window offset, output) pair, ``[K, prod(out)]``; positions
        in the padding (never a maximum, count 0) are mapped to 0."""
        assert self.in_size is not None and self.sum_out is not None
        g, d, size = self.geo, self.geo.dims, self.in_size
        out = tuple(self.sum_out.shape[-d:])
        dev = self.sum_out.device
        flat = torch.zeros((*g.kernel, *out), dtype=torch.long, device=dev)
        ok = torch.ones_like(flat, dtype=torch.bool)
        for k, st_in in enumerate(_strides(size)):
            kshape, oshape = [1] * (2 * d), [1] * (2 * d)
            kshape[k], oshape[d + k] = g.kernel[k], out[k]
            i = (torch.arange(out[k], device=dev).view(oshape) * g.stride[k] - g.padding[k]
                 + torch.arange(g.kernel[k], device=dev).view(kshape) * g.dilation[k])
            ok = ok & (i >= 0) & (i < size[k])
            flat = flat + i * st_in
        return torch.where(ok, flat, torch.zeros_like(flat)).reshape(math.prod(g.kernel), math.prod(out))


class MaxPoolReplay(torch.autograd.Function):
    """Representation pass of a spike max pooling: forward returns the measured rate of the
    pooled train; backward routes ``g`` by the argmax counts (see the module docstring)."""

    @staticmethod
    def forward(ctx, x_rep, rec: MaxPoolRecord):  # type: ignore[override]
        if rec.steps != rec.T or rec.counts is None or rec.sum_out is None:
            from snnplug.errors import SnnplugError

            raise SnnplugError(f"max pooling replayed after {rec.steps} of {rec.T} steps (internal)")
        ctx.rec = rec
        ctx.in_shape = x_rep.shape
        return (rec.sum_out / rec.T).to(x_rep.dtype).unsqueeze(0)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        rec: MaxPoolRecord = ctx.rec
        d = rec.geo.dims
        g2 = g[0].flatten(-d)  # [N, C, prod(out)]
        contrib = rec.counts.to(g.dtype) * (g2.unsqueeze(2) / rec.T)  # [N, C, K, prod(out)]
        pos = rec.positions().flatten().expand(*g2.shape[:2], -1)
        gx = torch.zeros((*g2.shape[:2], math.prod(ctx.in_shape[-d:])), dtype=g.dtype, device=g.device)
        gx.scatter_add_(2, pos, contrib.flatten(2))
        return gx.view(ctx.in_shape), None
