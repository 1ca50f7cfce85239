"""Does an snnTorch model take a dataset's samples? Checked on one sample before anything runs.

:func:`check_model_fits` runs one time step of the model on the dataset's first two samples
(no gradients, eval mode for the probe only, snnTorch states reset before and after) with a hook
on every leaf layer, so a failure names the layer, the input it got, what it expects and the fix
(``--dataset``, ``nn.Flatten()``, the first layer's size). It also checks that the output is
``[batch, classes]`` with the dataset's number of classes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from snnplug.errors import ShapeError

# built-in datasets a user can switch to with --dataset (static images)
KNOWN_SHAPES: dict[str, tuple[int, ...]] = {"digits": (1, 8, 8), "fashion-mnist": (1, 28, 28)}


def _datasets_with(values: int) -> str:
    names = [f"--dataset {n} ({'x'.join(map(str, s))})" for n, s in KNOWN_SHAPES.items() if math.prod(s) == values]
    return " or ".join(names) or f"a --dataset whose samples hold {values} values"


def _hint(layer: nn.Module, x_shape: tuple[int, ...], sample: tuple[int, ...]) -> str:
    """What to change when ``layer`` refused an input of ``x_shape``."""
    if isinstance(layer, nn.Linear):
        n_in = layer.in_features
        if len(x_shape) > 2 and math.prod(x_shape[1:]) == n_in:
            return f"add nn.Flatten() before it (the dataset gives {list(sample)} images)"
        return (f"it expects {n_in} features per sample and gets {math.prod(x_shape[1:])}; pass "
                f"{_datasets_with(n_in)}, or build the model for {list(sample)} samples")
    if isinstance(layer, nn.modules.conv._ConvNd):
        ch = layer.in_channels
        if len(x_shape) > 1 and x_shape[1] != ch:
            return f"it expects {ch} input channels and gets {x_shape[1]}; pass a --dataset with {ch}-channel samples"
        bigger = [f"--dataset {n} ({'x'.join(map(str, s))})" for n, s in KNOWN_SHAPES.items()
                  if s[0] == sample[0] and math.prod(s) > math.prod(sample)]
        return (f"the dataset's {list(sample)} images are too small for the model's kernels and pooling; pass "
                f"{' or '.join(bigger) or 'a --dataset with larger images'} or change its layers")
    return f"pass the --dataset the model was built for, or change its first layers to take {list(sample)} samples"


Entered = list[tuple[str, nn.Module, tuple[int, ...]]]


def _probe(model: nn.Module, x: torch.Tensor, open_: Entered) -> Any:
    """One forward of ``x``; ``open_`` collects the leaf layers entered but not left (after a
    failure: the failing layer last)."""
    from snnplug.adapters.snntorch import reset

    def pre(path: str) -> Any:
        def hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
            open_.append((path, mod, shape))
        return hook

    def post(_m: nn.Module, _a: Any, _o: Any) -> None:
        open_.pop()

    handles = []
    for path, m in model.named_modules():
        if next(m.children(), None) is None:
            handles += [m.register_forward_pre_hook(pre(path)), m.register_forward_hook(post)]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        reset(model)
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        reset(model)


def check_model_fits(model: nn.Module, x: torch.Tensor, num_classes: int, dataset: str) -> None:
    """Raise :class:`~snnplug.errors.ShapeError` unless ``model`` maps ``x`` (a batch of the dataset,
    ``[B, *sample]``) to ``[B, num_classes]`` (the first element when it returns a tuple)."""
    sample = tuple(x.shape[1:])
    entered: Entered = []
    try:
        out = _probe(model, x, entered)
    except Exception as exc:  # noqa: BLE001 - any failure on the data is reported as a misfit
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        where = entered[-1] if entered else None
        head = (f"the model does not take dataset {dataset!r} (samples {list(sample)}, batches "
                f"[B, {', '.join(map(str, sample))}])")
        if where is None:
            raise ShapeError(f"{head}: its forward raised {type(exc).__name__}: {first}; pass the --dataset the model "
                             f"was built for, or change the model to take {list(sample)} samples") from exc
        path, layer, x_shape = where
        raise ShapeError(f"{head}: layer {path!r} ({layer}) failed on input {list(x_shape)}: {first}; "
                         f"{_hint(layer, x_shape, sample)}") from exc
    y = out[0] if isinstance(out, tuple) else out
    if not isinstance(y, torch.Tensor) or y.dim() != 2 or y.shape[1] != num_classes:
        got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ShapeError(f"the model maps dataset {dataset!r} (samples {list(sample)}) to {got} per step, but compare "
                         f"needs [batch, {num_classes}] (one output neuron per class of {dataset!r}); make its last "
                         f"layer have {num_classes} outputs (e.g. nn.Linear(..., {num_classes})) or pass the "
                         f"--dataset it was built for")
