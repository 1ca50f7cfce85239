"""Max pooling of spike trains in DSR's representation space.

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

Recording ``c`` costs ``k_h*k_w`` small integers per pooled output (for the usual 3x3/stride 2
or 2x2/stride 2 pooling about 2.25x or 1x the input size in int16), independent of ``T``.
Ties (common: spikes are binary) are broken exactly as the per-step ``max_pool2d`` breaks them,
because ``c`` is counted from its own indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as Fn
from torch import nn


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass
class PoolGeometry:
    """Kernel, stride, padding, dilation of a 2-d max pooling (from an ``nn.MaxPool2d``)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool

    @classmethod
    def of(cls, m: nn.MaxPool2d) -> PoolGeometry:
        return cls(_pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size),
                   _pair(m.padding), _pair(m.dilation), bool(m.ceil_mode))

    def pool(self, x: torch.Tensor, indices: bool = False):
        return Fn.max_pool2d(x, self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode,
                             return_indices=indices)


class MaxPoolRecord:
    """Per-window argmax counts ``c[o, j]`` (``j`` = offset in the window) and the output's sum
    over time, accumulated chunk by chunk over one simulation of ``T`` steps."""

    def __init__(self, geo: PoolGeometry, T: int) -> None:
        self.geo, self.T = geo, T
        self.counts: torch.Tensor | None = None  # [N, C, K, Ho*Wo]
        self.sum_out: torch.Tensor | None = None  # [N, C, Ho, Wo]
        self.in_hw: tuple[int, int] | None = None
        self.steps = 0

    def _offsets(self, idx: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """Flat input index (``h*W + w``) of each output's maximum -> offset in its window."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (self.geo.kernel, self.geo.stride, self.geo.padding,
                                                  self.geo.dilation)
        Ho, Wo = idx.shape[-2:]
        oh = torch.arange(Ho, device=idx.device).view(Ho, 1) * sh - ph
        ow = torch.arange(Wo, device=idx.device).view(1, Wo) * sw - pw
        jh = torch.div(torch.div(idx, W, rounding_mode="floor") - oh, dh, rounding_mode="floor")
        jw = torch.div(idx % W - ow, dw, rounding_mode="floor")
        return jh * kw + jw

    def add(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` ([n, N, C, H, W], n steps), count the maxima, return the pooled steps."""
        n = x.shape[0]
        H, W = x.shape[-2:]
        y, idx = self.geo.pool(x.flatten(0, 1), indices=True)
        y = y.view(n, *x.shape[1:3], *y.shape[-2:])
        idx = idx.view(n, *x.shape[1:3], *idx.shape[-2:])
        K = self.geo.kernel[0] * self.geo.kernel[1]
        if self.counts is None:
            dtype = torch.int16 if self.T < 2 ** 15 else torch.int32
            self.counts = torch.zeros((*y.shape[1:3], K, y.shape[-2] * y.shape[-1]), dtype=dtype,
                                      device=x.device)
            self.in_hw = (H, W)
        ones = torch.ones((*y.shape[1:3], 1, y.shape[-2] * y.shape[-1]), dtype=self.counts.dtype,
                          device=x.device)
        j = self._offsets(idx, H, W).flatten(-2).unsqueeze(3)  # [n, N, C, 1, Ho*Wo]
        for t in range(n):
            self.counts.scatter_add_(2, j[t], ones)
        s = y.sum(0)
        self.sum_out = s if self.sum_out is None else self.sum_out + s
        self.steps += n
        return y

    def positions(self) -> torch.Tensor:
        """Flat input index of every (window offset, output) pair, ``[K, Ho*Wo]``; positions in the
        padding (never a maximum, count 0) are mapped to 0."""
        assert self.in_hw is not None and self.sum_out is not None
        H, W = self.in_hw
        Ho, Wo = self.sum_out.shape[-2:]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (self.geo.kernel, self.geo.stride, self.geo.padding,
                                                  self.geo.dilation)
        dev = self.sum_out.device
        ih = (torch.arange(Ho, device=dev).view(1, Ho, 1) * sh - ph
              + torch.arange(kh, device=dev).view(kh, 1, 1) * dh)  # [kh, Ho, 1]
        iw = (torch.arange(Wo, device=dev).view(1, 1, Wo) * sw - pw
              + torch.arange(kw, device=dev).view(kw, 1, 1) * dw)  # [kw, 1, Wo]
        ih = ih.view(kh, 1, Ho, 1).expand(kh, kw, Ho, Wo)
        iw = iw.view(1, kw, 1, Wo).expand(kh, kw, Ho, Wo)
        ok = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        return torch.where(ok, ih * W + iw, torch.zeros_like(ih)).reshape(kh * kw, Ho * Wo)


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
        g2 = g[0].flatten(-2)  # [N, C, Ho*Wo]
        contrib = rec.counts.to(g.dtype) * (g2.unsqueeze(2) / rec.T)  # [N, C, K, Ho*Wo]
        pos = rec.positions().flatten().expand(*g2.shape[:2], -1)
        H, W = ctx.in_shape[-2:]
        gx = torch.zeros((*g2.shape[:2], H * W), dtype=g.dtype, device=g.device)
        gx.scatter_add_(2, pos, contrib.flatten(2))
        return gx.view(ctx.in_shape), None
