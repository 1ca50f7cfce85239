"""The generic training loop every strategy plugin uses.

Each epoch: seeded shuffling, a progress bar, ``strategy.loss`` + backward + step; evaluation
of accuracy at several T; an atomic checkpoint (model, optimizer, scheduler, RNG states,
history). Checkpoints can also be written every ``checkpoint_every`` steps; ``resume=True``
continues from the last one, replaying the epoch's shuffle and skipping the batches already
done, so an interrupted CPU run ends with the same weights as an uninterrupted one.

Reliability (``docs/reliability.md``): the output folder is claimed first (writable, locked
against a concurrent run, never silently overwritten: :mod:`snnplug.engine.rundir`); resuming
checks the run's identity (:mod:`snnplug.engine.resume`); every step is guarded against NaN/Inf
inputs, losses, gradients and running statistics (:mod:`snnplug.engine.guards`); under torchrun
the ranks agree on failures each step (:func:`snnplug.engine.distributed.agree`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnplug.data import DatasetBundle
from snnplug.engine import guards, rundir
from snnplug.engine.checkpoint import save_checkpoint
from snnplug.engine.resume import restore, run_identity
from snnplug.engine.seed import seed_everything
from snnplug.errors import CheckpointError, DataError


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 64
    lr: float | None = None  # None: the strategy's default
    seed: int = 0
    device: str = "cpu"
    eval_T: Sequence[int] | None = None  # None: the strategy's inference_T
    out_dir: str | Path | None = None  # checkpoint folder (None: no checkpoints)
    resume: bool = False
    checkpoint_every: int = 0  # steps; 0: once per epoch
    progress: bool = True
    max_steps: int | None = None  # stop after this many optimizer steps (tests, smoke runs)
    force: bool = False  # replace a checkpoint already in out_dir (otherwise refused unless resume)
    on_nonfinite: str = "raise"  # "raise" | "skip": a NaN/Inf batch, loss or gradient


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    peak_memory_mb: float = 0.0

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def _to(x: torch.Tensor, device: str) -> torch.Tensor:
    return x.to(device, non_blocking=True)


@torch.no_grad()
def evaluate(strategy: Any, model: nn.Module, loader: Any, Ts: Sequence[int] | None = None,
             device: str = "cpu") -> dict[int, float]:
    """Accuracy at each T in ``Ts`` (default: the strategy's inference T)."""
    Ts = list(Ts) if Ts else [strategy.inference_T]
    was_training = model.training
    model.eval()
    correct = {t: 0 for t in Ts}
    total = 0
    for x, y in loader:
        x, y = _to(x, device), _to(y, device)
        for t in Ts:
            correct[t] += int((strategy.predict(model, x, T=t).argmax(-1) == y).sum())
        total += len(y)
    model.train(was_training)
    return {t: correct[t] / max(1, total) for t in Ts}


class _SigtermFlag:
    """While training with checkpoints, SIGTERM finishes the current step, writes a checkpoint
    and exits with status 143, so ``--resume`` loses nothing (SIGKILL loses the steps since the
    last checkpoint: use ``checkpoint_every``)."""

    def __init__(self, enabled: bool) -> None:
        self.requested = False
        self._old: Any = None
        if enabled and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None


def dist_rank() -> int:
    import torch.distributed as dist

    return dist.get_rank()


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train(strategy: Any, model: nn.Module, bundle: DatasetBundle, cfg: TrainConfig) -> TrainResult:
    """Train ``model`` with ``strategy`` on ``bundle``; see the module docstring.

    Build the model after ``seed_everything(cfg.seed)`` for reproducible initial weights.
    """
    from torch.utils.data import DataLoader

    from snnplug.engine import distributed as ddp

    distributed = ddp.active()
    rank = dist_rank() if distributed else 0
    gen = seed_everything(cfg.seed)
    model.to(cfg.device)
    strategy.frames_input = bundle.frames
    guard = guards.NonFiniteGuard(cfg.on_nonfinite)
    if distributed and cfg.batch_size < ddp.dist.get_world_size():
        raise ddp.DistributedError(f"--batch-size {cfg.batch_size} is smaller than the {ddp.dist.get_world_size()} "
                                   f"ranks: every rank needs a sample; pass --batch-size >= the rank count")
    # distributed: drop a short last global batch, as DistributedSampler(drop_last=True) users expect
    train_loader = DataLoader(bundle.train, batch_size=cfg.batch_size, shuffle=True, generator=gen,
                              drop_last=distributed)
    if len(train_loader) == 0:
        raise DataError(f"{len(bundle.train)} training samples do not fill one batch of "
                        f"{cfg.batch_size}; lower --batch-size or use more data")
    test_loader = DataLoader(bundle.test, batch_size=256, shuffle=False)
    opt, sched = strategy.make_optimizer(model, cfg.epochs, len(train_loader), cfg.lr)
    ckpt_path = Path(cfg.out_dir) / "checkpoint.pt" if cfg.out_dir is not None else None
    run = run_identity(bundle, batch_size=cfg.batch_size, seed=cfg.seed, epochs=cfg.epochs,  # hashes the data
                       lr=cfg.lr if cfg.lr is not None else strategy.optim_config().lr) if ckpt_path else {}
    history: list[dict[str, Any]] = []
    start_epoch, skip_steps, global_step = 0, 0, 0
    elapsed = 0.0
    if cfg.resume and ckpt_path is None:
        raise CheckpointError("resume needs an output folder holding checkpoint.pt")
    lock, claim_error = None, None
    if ckpt_path is not None and rank == 0:
        try:
            lock = rundir.claim(ckpt_path.parent, resume=cfg.resume, force=cfg.force)
        except rundir.RunFolderError as exc:
            claim_error = exc
    if distributed:  # rank 0's claim decides for every rank
        failing, _, _ = ddp.agree(failed=claim_error is not None)
        if claim_error is None:
            ddp.raise_if_failed(failing, "claiming the output folder")
    if claim_error is not None:
        raise claim_error
    if cfg.resume and ckpt_path.exists():
        try:
            state = restore(ckpt_path, strategy, model, opt, sched, run, len(train_loader))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        start_epoch, skip_steps = state["epoch"], state.get("step_in_epoch", 0)
        global_step = state.get("global_step", 0)
        history = list(state.get("history", []))
        elapsed = float(state.get("train_seconds", 0.0))

    def checkpoint(epoch: int, step_in_epoch: int) -> None:
        if ckpt_path is None or rank != 0:
            return
        save_checkpoint(ckpt_path, {
            "strategy": strategy.name, "strategy_config": strategy.config(),
            "dataset": run["dataset"], "run": run,
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
            "rng": {"torch": torch.get_rng_state()},
            "history": history, "train_seconds": elapsed,
        })

    sigterm = _SigtermFlag(enabled=ckpt_path is not None)
    progress = None
    if cfg.progress:
        from tqdm.auto import tqdm as progress
    stop, terminated = False, False
    try:
        for epoch in range(start_epoch, cfg.epochs):
            # the shuffle depends on (seed, epoch) only, so a resumed run replays it exactly
            gen.manual_seed(cfg.seed * 100003 + epoch)
            model.train()
            t0 = time.perf_counter()
            seen, correct, loss_sum = 0, 0, 0.0
            batches = enumerate(train_loader)
            if progress is not None:
                batches = progress(batches, total=len(train_loader), desc=f"{strategy.name} epoch {epoch + 1}/{cfg.epochs}",
                                   leave=False)
            for step, (x, y) in batches:
                if step < skip_steps:
                    continue
                where = f"epoch {epoch + 1}, batch {step + 1} of {len(train_loader)}"
                x, y = _to(x, cfg.device), _to(y, cfg.device)
                n_global = len(y)
                if distributed:
                    x, y = ddp.shard(x, y)
                bad, failed = None, None
                try:
                    bad = guard.before(model, x)
                    if bad is None:
                        loss, logits = strategy.loss(model, x, y)
                        opt.zero_grad(set_to_none=True)
                        # distributed: weight so that averaging over ranks gives the global batch mean
                        (loss * ddp.weight_of_shard(len(y), n_global) if distributed else loss).backward()
                        bad = guard.after(model, loss)
                except Exception as exc:
                    if not distributed:
                        raise
                    failed = exc
                if distributed:  # tell the peers before they wait for this rank's gradients
                    failing, any_bad, any_stop = ddp.agree(failed is not None, bad is not None, sigterm.requested)
                    if failed is not None:
                        raise failed
                    ddp.raise_if_failed(failing, where)
                    bad = bad or ("another rank's slice of this batch gave NaN/Inf" if any_bad else None)
                    terminated = terminated or any_stop
                else:
                    terminated = sigterm.requested
                if bad is not None:
                    guard.reject(model, bad, where)  # raises unless on_nonfinite="skip"
                else:
                    if distributed:
                        ddp.average_gradients(model)
                    opt.step()
                    if distributed:
                        ddp.average_buffers(model)
                    if sched is not None:
                        sched.step()
                    global_step += 1
                    seen += len(y)
                    correct += int((logits.detach().argmax(-1) == y).sum())
                    loss_sum += float(loss.detach()) * len(y)
                if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0:
                    elapsed += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    checkpoint(epoch, step + 1)
                if cfg.max_steps is not None and global_step >= cfg.max_steps:
                    stop = step + 1 < len(train_loader)  # interrupted inside the epoch
                    break
                if terminated:  # finish the step, keep it, then leave (all ranks at the same step)
                    stop = True
                    break
            if stop:  # like a kill: keep the mid-epoch position, skip the epoch's evaluation
                elapsed += time.perf_counter() - t0
                checkpoint(epoch, step + 1)
                if terminated:
                    raise SystemExit(128 + signal.SIGTERM)
                break
            skip_steps = 0
            elapsed += time.perf_counter() - t0
            accs = evaluate(strategy, model, test_loader, cfg.eval_T, cfg.device)
            history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen),
                            "train_acc": correct / max(1, seen),
                            "test_acc": {str(t): a for t, a in accs.items()}, "train_seconds": elapsed,
                            "nonfinite_skipped": len(guard.skipped)})
            checkpoint(epoch + 1, 0)
            if cfg.max_steps is not None and global_step >= cfg.max_steps:
                break
        if terminated or sigterm.requested:  # arrived after the last step: the final checkpoint is written
            raise SystemExit(128 + signal.SIGTERM)
    finally:
        sigterm.restore()  # never leave the handler installed in the caller's process
        if lock is not None:
            lock.release()
    return TrainResult(model=model, history=history, train_seconds=elapsed, peak_memory_mb=_peak_rss_mb())
