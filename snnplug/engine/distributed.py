"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPU), launched by torchrun.

Every rank builds the same model from the same seed and draws the same seeded global batch; rank
r trains on its contiguous slice of it. After ``backward`` the gradients are averaged across
ranks (what DistributedDataParallel does, but independent of how a strategy calls the model, so
strategies that run the model twice, like DSR, or convert it stay correct). After each optimizer
step the floating-point buffers (BatchNorm/BNTT running statistics) are averaged and learned
thresholds therefore stay identical, since parameters only change through averaged gradients.
Only rank 0 writes checkpoints. With equal slices and a batch-mean loss this reproduces a single
process with the same global batch for models without batch-statistics layers (BN normalises
with per-rank statistics, as DDP without SyncBatchNorm does).
"""

from __future__ import annotations

import os
import torch
import torch.distributed as dist
from torch import nn


def init_from_env() -> tuple[int, int]:
    """Initialise the default process group from torchrun's environment; (rank, world size)."""
    if not dist.is_initialized():
        if "RANK" not in os.environ:
            raise RuntimeError("--distributed needs torchrun: torchrun --nproc-per-node N -m snnplug train ...")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    n = len(y)
    lo, hi = rank * n // world, (rank + 1) * n // world
    return x[lo:hi], y[lo:hi]


def weight_of_shard(n_local: int, n_global: int) -> float:
    return n_local * dist.get_world_size() / n_global


def average_gradients(model: nn.Module) -> None:
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(world)


def average_buffers(model: nn.Module) -> None:
    world = dist.get_world_size()
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(world)


def broadcast_model(model: nn.Module) -> None:
    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=0)


def rank() -> int:
    """This process's rank (0 when not running distributed)."""
    return dist.get_rank() if active() else 0


def barrier() -> None:
    dist.barrier()
