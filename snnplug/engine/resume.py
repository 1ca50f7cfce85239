"""Resuming a run: what must match, and how a longer ``--epochs`` is handled.

A checkpoint records the run's identity (:func:`run_identity`): the dataset (its full source, the
``limit`` and a SHA-256 fingerprint of its tensors), the batch size, seed, learning rate and the
epochs the run was planned for. :func:`restore` refuses to continue a run with any of them
changed, naming the field and the option that restores it: the resumed run would otherwise be
a different experiment with the old run's history. The strategy's options must match too
(:func:`config_difference`; an option added since the checkpoint was written counts as its
default ``None``, so older runs still resume).

``--epochs`` may change (extend a finished run, or shorten an unfinished one, but not below the
epochs already done). The cosine learning-rate schedule is then *re-planned* over the new total:
the scheduler is rebuilt for ``epochs x steps_per_epoch`` steps and advanced to the step the run
has reached, so the lr continues on the new cosine curve (it is not restarted from its initial
value, and it does not follow the old curve's periodic rise past its end). A warning states the
lr before and after. Resuming with the same ``--epochs`` stays bit-identical to an
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnplug.engine.checkpoint import load_checkpoint
from snnplug.errors import CheckpointError

#: field -> the command-line option that sets it
OPTIONS = {"dataset": "--dataset/--data-root/--limit", "batch_size": "--batch-size", "seed": "--seed",
           "lr": "--lr"}


def fingerprint(dataset: Any) -> str | None:
    """SHA-256 of a ``TensorDataset``'s tensors (None for other datasets: their source path is
    compared instead)."""
    tensors = getattr(dataset, "tensors", None)
    if tensors is None:
        return None
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def dataset_identity(bundle: Any) -> dict[str, Any]:
    """What identifies the data a run trained on (stored in checkpoints)."""
    return {
        "name": bundle.name,
        "source": getattr(bundle, "source", None) or bundle.name,
        "root": getattr(bundle, "root", None),
        "limit": getattr(bundle, "limit", None),
        "train_size": len(bundle.train),
        "train_sha256": fingerprint(bundle.train),
        "test_sha256": fingerprint(bundle.test),
        "input_shape": list(bundle.input_shape),
        "num_classes": bundle.num_classes,
        "frames": bundle.frames,
    }


def run_identity(bundle: Any, *, batch_size: int, seed: int, lr: float, epochs: int) -> dict[str, Any]:
    return {"dataset": dataset_identity(bundle), "batch_size": batch_size, "seed": seed, "lr": lr,
            "epochs": epochs}


def _describe(ds: dict[str, Any]) -> str:
    return f"{ds.get('source')} (limit {ds.get('limit')}, {ds.get('train_size')} training samples)"


def check_same_run(path: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming the first field that differs from the checkpoint's run."""
    if not old:
        return  # checkpoints written before run identities were recorded
    od, nd = old.get("dataset", {}), new["dataset"]
    keys = ("source", "limit", "train_size", "train_sha256", "test_sha256", "input_shape", "num_classes")
    diff = [k for k in keys if k in od and od[k] != nd.get(k)]
    if diff:
        raise CheckpointError(
            f"cannot resume {path}: it was trained on dataset {_describe(od)}, not {_describe(nd)} "
            f"(differs in {', '.join(diff)}); resume with the same {OPTIONS['dataset']} or train "
            f"into another --out"
        )
    for field in ("batch_size", "seed", "lr"):
        if field in old and old[field] != new[field]:
            raise CheckpointError(
                f"cannot resume {path}: {field} was {old[field]!r} in that run, now {new[field]!r}; "
                f"resume with {OPTIONS[field]} {old[field]} or train into another --out"
            )


def config_difference(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The strategy options that differ between a checkpoint's config and this run's, as
    ``(option, old, new)``. An option one side lacks counts as ``None``: an option added in a
    later version defaults to ``None`` for "as before", so a run checkpointed before it existed
    resumes as long as the option is left at that default."""
    return [(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys(), key=str)
            if old.get(k) != new.get(k)]


def restore(path: Path, strategy: Any, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
            run: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """Load ``path`` into ``model``/``opt``/``sched`` after the checks above; the checkpoint's state."""
    state = load_checkpoint(path, strategy=strategy.name)
    diff = config_difference(state["strategy_config"], strategy.config())
    if diff:
        raise CheckpointError(
            f"cannot resume {path}: its strategy options differ from this run's ("
            + ", ".join(f"{k} was {a!r}, now {b!r}" for k, a, b in diff)
            + "); resume with the same options or use another output folder"
        )
    old = state.get("run")
    check_same_run(path, old, run)
    done, planned, epochs = int(state["epoch"]), (old or {}).get("epochs", run["epochs"]), run["epochs"]
    if epochs < done or (epochs == done and state.get("step_in_epoch", 0)):
        raise CheckpointError(
            f"cannot resume {path} with --epochs {epochs}: that run has already trained {done} "
            f"epoch(s){' and part of the next' if state.get('step_in_epoch', 0) else ''}; pass a "
            f"larger --epochs (it was planned for {planned})"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the model: {str(exc).splitlines()[0]}") from None
    global_step = int(state.get("global_step", 0))
    if epochs == planned or sched is None:
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
    else:  # re-plan the schedule over the new total and advance it to where the run is
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
            for _ in range(global_step):
                sched.step()
        lrs = [g["lr"] for g in opt.param_groups]
        opt.load_state_dict(state["optimizer"])
        old_lrs = [g["lr"] for g in opt.param_groups]
        for g, lr in zip(opt.param_groups, lrs, strict=True):
            g["lr"] = lr
        warnings.warn(
            f"resuming {path} with --epochs {epochs} instead of the planned {planned}: the learning-"
            f"rate schedule is re-planned over {epochs} epochs at step {global_step}; lr "
            f"{old_lrs[0]:.3g} -> {lrs[0]:.3g}", UserWarning, stacklevel=3)
    torch.set_rng_state(state["rng"]["torch"])
    return state
