"""The one training loop every strategy, benchmark and command uses.

``train(strategy, model, data, cfg, test=..., callbacks=[...])``. ``data`` is a
:class:`~snnplug.data.DatasetBundle`, an ``(x, y)`` pair of tensors, or any iterable of ``(x, y)``
batches with a length (a DataLoader, a list). For a bundle or tensors the engine builds the
loader and shuffles with a generator seeded by ``(seed, epoch)`` only, so a resumed run replays
the epoch's order exactly; a loader you pass is iterated as it is, once per epoch.

Each epoch: ``strategy.loss`` + backward + step (averaged across ranks under torchrun, see
:mod:`.distributed`), callbacks after every step (:mod:`.callbacks`); then accuracy at
``eval_T`` on the test data (a bundle's test split by default; none for other data unless
``test`` is given) and an atomic checkpoint (model, optimizer, scheduler, RNG state, history).
Checkpoints can also be written every ``checkpoint_every`` steps; ``resume=True`` continues
from the last one, skipping the batches already done, so an interrupted CPU run ends with the
same weights as an uninterrupted one. While checkpointing, SIGTERM finishes the current step,
writes a checkpoint and exits with status 143.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnplug.data import DatasetBundle
from snnplug.engine import distributed as ddp
from snnplug.engine import guards, resume, rundir
from snnplug.engine.callbacks import TrainState, call
from snnplug.engine.checkpoint import save_checkpoint
from snnplug.engine.evaluate import batches, evaluate
from snnplug.engine.seed import seed_everything
from snnplug.errors import CheckpointError, DataError, ShapeError


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 64  # for the loaders the engine builds (bundle or tensors)
    lr: float | None = None  # None: the strategy's default
    seed: int | None = 0  # seeds Python/NumPy/torch at the start; None: leave them as the caller set them
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
    #: allocator peak of the training steps in MiB, from a :class:`~snnplug.engine.callbacks.PeakMemory`
    #: callback (pass one in ``callbacks``); None when none was given
    peak_memory_mb: float | None = None
    train_cpu_seconds: float = 0.0
    steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)  # what callbacks recorded

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


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


def _peak_memory_mb(metrics: dict[str, Any]) -> float | None:
    peak = metrics.get("peak_memory_bytes")
    return None if peak is None else peak / 2 ** 20


def _layout_mismatch(dataset: str, frames: bool) -> str:
    if frames:
        return (f"dataset {dataset!r} yields event frames [B, T, ...]; build the strategy with frames=True "
                f"(snnplug.strategy(name, frames=True))")
    return f"dataset {dataset!r} yields static batches [B, ...]; build the strategy with frames=False"


def _tensor_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator,
                   drop_last: bool) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen,
                      drop_last=drop_last)


def _data(data: Any, test: Any, cfg: TrainConfig, gen: torch.Generator) -> tuple[Any, Any, bool, dict[str, Any]]:
    """(train loader, test batches or None, engine-built loader?, dataset record for checkpoints).

    Under torchrun the engine's loaders drop a short last global batch, as
    ``DistributedSampler(drop_last=True)`` users expect (a rank could get no sample)."""
    from torch.utils.data import DataLoader

    drop = ddp.active()
    if isinstance(data, DatasetBundle):
        loader = DataLoader(data.train, batch_size=cfg.batch_size, shuffle=True, generator=gen, drop_last=drop)
        test = DataLoader(data.test, batch_size=256, shuffle=False) if test is None else test
        meta = {"name": data.name, "input_shape": list(data.input_shape), "num_classes": data.num_classes,
                "frames": data.frames}
        return loader, batches(test), True, meta
    if isinstance(data, tuple) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        x, y = data
        meta = {"name": "tensors", "input_shape": list(x.shape[1:]), "num_classes": int(y.max()) + 1,
                "frames": False}
        loader = _tensor_loader(x, y, cfg.batch_size, gen, drop)
        return loader, None if test is None else batches(test), True, meta
    try:
        len(data)
    except TypeError:
        raise TypeError(f"train() needs a DatasetBundle, an (x, y) tensor pair or batches with a length "
                        f"(a DataLoader, a list); got {type(data).__name__} without len()") from None
    return data, None if test is None else batches(test), False, {"name": type(data).__name__}


def _check_batches(loader: Any, data: Any, cfg: TrainConfig) -> None:
    if ddp.active() and cfg.batch_size < ddp.dist.get_world_size():
        raise ddp.DistributedError(f"--batch-size {cfg.batch_size} is smaller than the {ddp.dist.get_world_size()} "
                                   f"ranks: every rank needs a sample; pass --batch-size >= the rank count")
    if len(loader) == 0:
        n = len(data.train) if isinstance(data, DatasetBundle) else "the"
        raise DataError(f"{n} training samples do not fill one batch of {cfg.batch_size}; "
                        f"lower --batch-size or use more data")


class _Checkpoints:
    """Claims the output folder (rank 0), writes (rank 0 only) and restores ``<out_dir>/checkpoint.pt``."""

    def __init__(self, cfg: TrainConfig, state: TrainState, data: Any, meta: dict[str, Any], rank: int) -> None:
        self.path = Path(cfg.out_dir) / "checkpoint.pt" if cfg.out_dir is not None else None
        self.state, self.rank, self.lock = state, rank, None
        self.run: dict[str, Any] = {}
        if self.path is not None:  # hashes the data: only when checkpointing
            lr = cfg.lr if cfg.lr is not None else state.strategy.optim_config().lr
            ident = dict(batch_size=cfg.batch_size, seed=cfg.seed, epochs=cfg.epochs, lr=lr)
            self.run = (resume.run_identity(data, **ident) if isinstance(data, DatasetBundle)
                        else {"dataset": meta, **ident})

    def claim(self, cfg: TrainConfig) -> None:
        """Rank 0 claims the folder (writable, locked, not another run's); every rank learns the outcome."""
        if self.path is None:
            if cfg.resume:
                raise CheckpointError("resume needs an output folder holding checkpoint.pt")
            return
        error = None
        if self.rank == 0:
            try:
                self.lock = rundir.claim(self.path.parent, resume=cfg.resume, force=cfg.force)
            except rundir.RunFolderError as exc:
                error = exc
        if ddp.active():  # rank 0's claim decides for every rank
            failing, _, _ = ddp.agree(failed=error is not None)
            if error is None:
                ddp.raise_if_failed(failing, "claiming the output folder")
        if error is not None:
            raise error

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def save(self, epoch: int, step_in_epoch: int) -> None:
        s = self.state
        if self.path is None or self.rank != 0:
            return
        save_checkpoint(self.path, {
            "strategy": s.strategy.name, "strategy_config": s.strategy.config(),
            "dataset": self.run["dataset"], "run": self.run,
            "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
            "scheduler": s.scheduler.state_dict() if s.scheduler is not None else None,
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": s.global_step,
            "rng": {"torch": torch.get_rng_state()},
            "history": s.history, "train_seconds": s.train_seconds, "train_cpu_seconds": s.train_cpu_seconds,
        })

    def restore(self, steps_per_epoch: int) -> int:
        """Load the checkpoint (after the run-identity checks) into the state, if there is one;
        the steps of its epoch already done."""
        if self.path is None or not self.path.exists():
            return 0
        s = self.state
        ck = resume.restore(self.path, s.strategy, s.model, s.optimizer, s.scheduler, self.run, steps_per_epoch)
        s.epoch, s.global_step = ck["epoch"], ck.get("global_step", 0)
        s.history = list(ck.get("history", []))
        s.train_seconds = float(ck.get("train_seconds", 0.0))
        s.train_cpu_seconds = float(ck.get("train_cpu_seconds", 0.0))
        return int(ck.get("step_in_epoch", 0))


class _Clock:
    """Accumulates wall and CPU time of the training steps into the state (paused outside them)."""

    def __init__(self, state: TrainState) -> None:
        self.state = state
        self.start()

    def start(self) -> None:
        self.w, self.c = time.perf_counter(), time.process_time()

    def pause(self) -> None:
        self.state.train_seconds += time.perf_counter() - self.w
        self.state.train_cpu_seconds += time.process_time() - self.c


def _forward_backward(state: TrainState, x: torch.Tensor, y: torch.Tensor, n_global: int,
                      guard: guards.NonFiniteGuard) -> tuple[str | None, Any]:
    """Guarded loss + backward on this rank's batch: (reason the step must not be applied, logits)."""
    bad = guard.before(state.model, x)
    if bad is not None:
        return bad, None
    loss, logits = state.strategy.loss(state.model, x, y)
    state.optimizer.zero_grad(set_to_none=True)
    # distributed: weight so that averaging over ranks gives the global batch mean
    (loss * ddp.weight_of_shard(len(y), n_global) if ddp.active() else loss).backward()
    state.loss = float(loss.detach())
    return guard.after(state.model, loss), logits


def _step(state: TrainState, x: torch.Tensor, y: torch.Tensor, guard: guards.NonFiniteGuard,
          sigterm: _SigtermFlag, where: str) -> tuple[int, int, bool]:
    """One guarded optimizer step on a global batch: (samples, correct) of this rank's part (0, 0 for
    a skipped batch) and whether training must stop (SIGTERM here or, distributed, on any rank)."""
    n_global, distributed = len(y), ddp.active()
    if distributed:
        x, y = ddp.shard(x, y)
    bad, logits, failed = None, None, None
    try:
        bad, logits = _forward_backward(state, x, y, n_global, guard)
    except Exception as exc:
        if not distributed:
            raise
        failed = exc
    terminated = sigterm.requested
    if distributed:  # tell the peers before they wait for this rank's gradients
        failing, any_bad, any_stop = ddp.agree(failed is not None, bad is not None, sigterm.requested)
        if failed is not None:
            raise failed
        ddp.raise_if_failed(failing, where)
        bad = bad or ("another rank's slice of this batch gave NaN/Inf" if any_bad else None)
        terminated = terminated or any_stop
    if bad is not None:
        guard.reject(state.model, bad, where)  # raises unless on_nonfinite="skip"
        return 0, 0, terminated
    if distributed:
        ddp.average_gradients(state.model)
    state.optimizer.step()
    if distributed:
        ddp.average_buffers(state.model)
    if state.scheduler is not None:
        state.scheduler.step()
    state.global_step += 1
    return len(y), int((logits.detach().argmax(-1) == y).sum()), terminated


def _epoch(state: TrainState, loader: Any, skip: int, ckpt: _Checkpoints, callbacks: list[Any],
           guard: guards.NonFiniteGuard, sigterm: _SigtermFlag) -> tuple[bool, bool, int, int, float]:
    """Train one epoch from batch ``skip``; (interrupted inside it?, terminated?, samples, correct, loss sum)."""
    cfg = state.cfg
    seen = correct = 0
    loss_sum = 0.0
    items: Iterable[Any] = enumerate(loader)
    if cfg.progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(loader), leave=False,
                     desc=f"{state.strategy.name} epoch {state.epoch + 1}/{cfg.epochs}")
    clock = _Clock(state)
    for step, (x, y, *_) in items:
        if step < skip:
            continue
        where = f"epoch {state.epoch + 1}, batch {step + 1} of {len(loader)}"
        n, c, terminated = _step(state, x.to(cfg.device, non_blocking=True), y.to(cfg.device, non_blocking=True),
                                 guard, sigterm, where)
        state.step_in_epoch = step + 1
        seen, correct, loss_sum = seen + n, correct + c, loss_sum + state.loss * n
        clock.pause()
        if cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0:
            ckpt.save(state.epoch, step + 1)
        call(callbacks, "on_step", state)
        clock.start()
        if state.stop or terminated or (cfg.max_steps is not None and state.global_step >= cfg.max_steps):
            # interrupted inside the epoch unless this was its last batch (a SIGTERM always interrupts)
            return terminated or step + 1 < len(loader), terminated, seen, correct, loss_sum
    clock.pause()
    return False, False, seen, correct, loss_sum


def _end_epoch(state: TrainState, test: Any, seen: int, correct: int, loss_sum: float, skipped: int) -> None:
    cfg = state.cfg
    accs = evaluate(state.strategy, state.model, test, cfg.eval_T, cfg.device) if test is not None else {}
    state.history.append({"epoch": state.epoch + 1, "train_loss": loss_sum / max(1, seen),
                          "train_acc": correct / max(1, seen),
                          "test_acc": {str(t): a for t, a in accs.items()},
                          "train_seconds": state.train_seconds, "nonfinite_skipped": skipped})


def _loop(state: TrainState, loader: Any, test: Any, own_loader: bool, gen: torch.Generator, skip: int,
          ckpt: _Checkpoints, callbacks: list[Any], sigterm: _SigtermFlag) -> None:
    cfg, model = state.cfg, state.model
    guard = guards.NonFiniteGuard(cfg.on_nonfinite)
    terminated = False
    call(callbacks, "on_train_start", state)
    for epoch in range(state.epoch, cfg.epochs):
        state.epoch, state.step_in_epoch = epoch, skip
        if own_loader:  # the shuffle depends on (seed, epoch) only: a resumed run replays it
            gen.manual_seed((cfg.seed or 0) * 100003 + epoch)
        model.train()
        interrupted, terminated, seen, correct, loss_sum = _epoch(state, loader, skip, ckpt, callbacks, guard,
                                                                  sigterm)
        skip = 0
        if interrupted:  # like a kill: keep the mid-epoch position, skip the epoch's evaluation
            ckpt.save(epoch, state.step_in_epoch)
            break
        _end_epoch(state, test, seen, correct, loss_sum, len(guard.skipped))
        ckpt.save(epoch + 1, 0)
        call(callbacks, "on_epoch", state)
        if state.stop or (cfg.max_steps is not None and state.global_step >= cfg.max_steps):
            break
    if terminated or sigterm.requested:  # the checkpoint of the position is written
        raise SystemExit(128 + signal.SIGTERM)
    call(callbacks, "on_train_end", state)


def train(strategy: Any, model: nn.Module, data: Any, cfg: TrainConfig | None = None, *, test: Any = None,
          callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train ``model`` with ``strategy`` on ``data``; see the module docstring. ``test``: data
    for the per-epoch accuracy (default: a bundle's test split). ``callbacks``: see
    :mod:`snnplug.engine.callbacks`. Build the model after ``seed_everything(cfg.seed)`` for
    reproducible initial weights."""
    cfg = cfg or TrainConfig()
    gen = seed_everything(cfg.seed) if cfg.seed is not None else torch.Generator().manual_seed(0)
    model.to(cfg.device)
    loader, test_batches, own_loader, meta = _data(data, test, cfg, gen)
    if isinstance(data, DatasetBundle) and data.frames != strategy.frames:
        raise ShapeError(_layout_mismatch(data.name, data.frames))
    _check_batches(loader, data, cfg)
    opt, sched = strategy.make_optimizer(model, cfg.epochs, len(loader), cfg.lr)
    state = TrainState(strategy=strategy, model=model, optimizer=opt, scheduler=sched, cfg=cfg)
    ckpt = _Checkpoints(cfg, state, data, meta, ddp.rank())
    ckpt.claim(cfg)
    sigterm = None
    try:
        skip = ckpt.restore(len(loader)) if cfg.resume else 0
        sigterm = _SigtermFlag(enabled=ckpt.path is not None)
        _loop(state, loader, test_batches, own_loader, gen, skip, ckpt, list(callbacks), sigterm)
    except BaseException:
        call(list(callbacks), "on_train_abort", state)
        raise
    finally:
        if sigterm is not None:
            sigterm.restore()  # never leave the handler installed in the caller's process
        ckpt.release()
    return TrainResult(model=model, history=state.history, train_seconds=state.train_seconds,
                       peak_memory_mb=_peak_memory_mb(state.metrics), train_cpu_seconds=state.train_cpu_seconds,
                       steps=state.global_step, metrics=state.metrics)


def train_distributed(strategy: Any, model: nn.Module, data: Any, cfg: TrainConfig | None = None,
                      **kw: Any) -> TrainResult:
    """:func:`train` across the ranks of a torchrun launch (see :mod:`.distributed`)."""
    ddp.init_from_env()
    ddp.broadcast_model(model)
    try:
        result = train(strategy, model, data, cfg, **kw)
    except BaseException:
        # no barrier here: a peer may be gone; leaving lets torchrun end the job at once
        ddp.dist.destroy_process_group()
        raise
    ddp.barrier()  # every rank finished: rank 0's final checkpoint is on disk
    ddp.dist.destroy_process_group()
    return result
