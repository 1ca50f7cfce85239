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

Failing fast: before the gradients are averaged, every step all-reduces (MAX) a small status
vector ``[failed, non-finite, stop]`` (:func:`agree`). A rank whose step raised, met a NaN/Inf, or
received SIGTERM says so there instead of leaving its peers waiting in ``all_reduce``: every rank
then raises (:class:`PeerFailedError` on the others, naming the failing rank and the batch),
skips the step together (``--on-nonfinite skip``), or checkpoints and exits 143 together.
Nothing waits on a barrier after a failure, and the process group gets a finite timeout
(``SNNPLUG_DIST_TIMEOUT`` seconds, default 300) as a last resort against a peer that vanished
outside a step (torchrun also ends the other ranks when one exits with an error).

Uneven data: the last global batch of an epoch is dropped when it is smaller than the batch
size (as ``DistributedSampler(drop_last=True)`` with a ``drop_last`` loader does), so every step
gives every rank an equal, non-empty slice; up to ``batch_size - 1`` samples (a different
subset each epoch, since the shuffle changes) are not seen in an epoch.
"""

from __future__ import annotations

import datetime
import os
import torch
import torch.distributed as dist
from torch import nn

from snnplug.errors import SnnplugError


class DistributedError(SnnplugError, RuntimeError):
    """Distributed training was misconfigured."""


class PeerFailedError(SnnplugError, RuntimeError):
    """Another rank failed; this rank stopped with it instead of waiting for it."""


#: status slots all-reduced with MAX every step
FAILED, NONFINITE, STOP = 0, 1, 2


def init_from_env() -> tuple[int, int]:
    """Initialise the default process group from torchrun's environment; (rank, world size)."""
    if not dist.is_initialized():
        if "RANK" not in os.environ:
            raise DistributedError("--distributed needs torchrun: torchrun --nproc-per-node N -m snnplug train ...")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        timeout = float(os.environ.get("SNNPLUG_DIST_TIMEOUT", "300"))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    n = len(y)
    lo, hi = rank * n // world, (rank + 1) * n // world
    return x[lo:hi], y[lo:hi]


def agree(failed: bool = False, nonfinite: bool = False, stop: bool = False) -> tuple[int, bool, bool]:
    """All ranks exchange their step status; returns (lowest failing rank or -1, any non-finite,
    any stop). Every rank must call it once per step, at the same point."""
    rank, world = dist.get_rank(), dist.get_world_size()
    status = torch.zeros(3 + world, dtype=torch.int64)
    status[FAILED], status[NONFINITE], status[STOP] = int(failed), int(nonfinite), int(stop)
    if failed:
        status[3 + rank] = 1
    if dist.get_backend() == "nccl":
        status = status.cuda()
    dist.all_reduce(status, op=dist.ReduceOp.MAX)
    status = status.cpu()
    failing = [r for r in range(world) if status[3 + r]]
    return (failing[0] if failing else -1), bool(status[NONFINITE]), bool(status[STOP])


def raise_if_failed(failing: int, where: str) -> None:
    if failing >= 0:
        raise PeerFailedError(
            f"rank {failing} failed at {where} (its error is printed above); rank {dist.get_rank()} "
            f"stopped with it")


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
