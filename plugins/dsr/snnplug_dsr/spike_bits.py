"""Spike trains stored as bits over time: ``T`` steps of one neuron in ``ceil(T/8)`` bytes.

A layer's whole spike train ``[T, B, ...]`` takes ``ceil(T/8)`` bytes per neuron instead of
``4 * T`` (float32): 32x less, at most 1/4 of one float step for ``T <= 8``. Step ``t`` lives in
bit ``t % 8`` of byte ``t // 8``. Used by :mod:`.layerwise` to keep spikes between layers so that
memory hardly grows with ``T``. (Bytes rather than int32/int64 words: shifts, masks and the
conversion to float run 4-5x faster on uint8 on CPU.)
"""

from __future__ import annotations

import torch

from snnplug import kernels

BITS = 8
_KERNELS = "snnplug_dsr.kernels"


class SpikeBits:
    """Binary spike train ``[T, *shape]`` packed over time; values are ``amplitude * bit``."""

    def __init__(self, T: int, shape: torch.Size, device: torch.device, amplitude: torch.Tensor) -> None:
        self.T = T
        self.words = torch.zeros(((T + BITS - 1) // BITS, *shape), dtype=torch.uint8, device=device)
        self.amplitude = amplitude

    def _check(self, start: int, n: int) -> None:
        if start < 0 or n < 1 or start + n > self.T:
            raise IndexError(f"steps {start}..{start + n - 1} outside 0..{self.T - 1}")

    def write(self, start: int, spikes: torch.Tensor) -> None:
        """Store ``spikes`` ([n, *shape], nonzero = spike) as steps ``start .. start+n-1``."""
        self._check(start, spikes.shape[0])
        k = kernels.for_tensor(spikes, _KERNELS)  # CUDA: one fused Triton launch
        if k is not None:
            return k.pack_bits(spikes, self.words, start)
        for i in range(spikes.shape[0]):
            t = start + i
            bit = (spikes[i] != 0).view(torch.uint8)  # bool -> its bytes, no copy
            if t % BITS:
                bit.bitwise_left_shift_(t % BITS)
            self.words[t // BITS].bitwise_or_(bit)

    def read(self, start: int, n: int, dtype: torch.dtype) -> torch.Tensor:
        """Steps ``start .. start+n-1`` as ``[n, *shape]`` of ``dtype`` (``amplitude`` or 0)."""
        self._check(start, n)
        same = dtype == torch.float32 and self.amplitude.device == self.words.device
        k = kernels.for_tensor(self.amplitude, _KERNELS) if same else None  # CUDA: one launch
        if k is not None:
            return k.unpack_bits(self.words, start, n, self.amplitude)
        out = torch.empty((n, *self.words.shape[1:]), dtype=dtype, device=self.words.device)
        for i in range(n):
            t = start + i
            out[i].copy_(torch.bitwise_right_shift(self.words[t // BITS], t % BITS).bitwise_and_(1))
        return out.mul_(self.amplitude.to(dtype))
