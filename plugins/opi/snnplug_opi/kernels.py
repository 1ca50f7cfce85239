"""Fused Triton inference kernel for the OPI neuron (CUDA; checked on CPU by Triton's interpreter).

One program per ``BLOCK`` neurons loops over ``T`` with the potential in registers (Bu et al.,
AAAI 2022; :func:`.functional.if_multi_step`)::

    h_t = v_{t-1} + x_t      s_t = 1[h_t − θ ≥ 0]      v_t = h_t − θ·s_t      v_0 = c·θ (paper: θ/2)

``v_0`` comes in as a tensor (the neuron's state), so the kernel also continues a simulation
(anytime read-outs). Inference only: the converted network is not trained, and a surrogate's
gradient path stays on the torch implementation.

Why hand-written and not ``FlexSN``: FlexSN could express this IF neuron, but its Triton
lowering refuses to run without CUDA, so it cannot be checked by the interpreter in CI;
``benchmarks/gpu.py`` times the kernel against SpikingJelly's Triton ``IFNode`` on a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from snnplug.kernels import BLOCK, on_device


@triton.jit
def _forward(x_ptr, v0_ptr, s_ptr, vT_ptr, T, N, theta, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    v = tl.load(v0_ptr + n, mask=mask, other=0.0)
    for t in range(T):
        h = v + tl.load(x_ptr + t * N + n, mask=mask, other=0.0)
        s = (h - theta >= 0).to(tl.float32)
        tl.store(s_ptr + t * N + n, s, mask=mask)
        v = h - theta * s
    tl.store(vT_ptr + n, v, mask=mask)


def if_multi_step(x_seq: torch.Tensor, v: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`.functional.if_multi_step` without surrogate, fused: ``(spikes [T, ...], v_T)``."""
    x = x_seq.detach().contiguous()
    T, N = x.shape[0], x[0].numel()
    s = torch.empty_like(x)
    vT = torch.empty_like(x[0])
    with on_device(x):
        _forward[(triton.cdiv(N, BLOCK),)](x, v.detach().to(torch.float32).contiguous(), s, vT, T, N,
                                           theta, BLOCK=BLOCK, enable_fp_fusion=False)
    return s, vT
