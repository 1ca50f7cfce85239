"""``snnplug.convert(ann, "opi", ...)``: the OPI recipe run through SpikingJelly's ``ann2snn.Converter``."""

from __future__ import annotations

from typing import Any

from torch import nn

from snnplug.errors import UnsupportedModuleError


def convert(model: nn.Module, T: int = 16, *, calibration: Any = None, v_init: float = 0.5,
            fold_bn: bool = True, percentile: float = 99.9, max_batches: int | None = 16,
            device: Any = None) -> nn.Module:
    r"""Convert a trained ANN to a multi-step IF SNN with optimized initial potential
    (Bu et al., "Optimized Potential Initialization for Low-latency Spiking Neural Networks",
    AAAI 2022, Algorithm 1).

    Weights and biases are copied (BN folded, or kept with ``fold_bn=False``); each ReLU/clip
    activation becomes an IF neuron with soft reset and ``θ_l = λ_l`` (the ClipReLU bound; for a
    plain ReLU, the mean per-batch ``percentile`` of its activations on ``calibration``)::

        h_t = v_{t-1} + W x_t + b;   s_t = 1[h_t ≥ θ];   v_t = h_t − θ s_t;   v_0 = v_init · θ

    and emits ``θ·s_t``; input is direct (the image every step); the logits are the mean of the
    last layer's outputs. Returns an :class:`~snnplug_opi.network.OPISpikingNet` mapping
    ``[T, B, ...] -> [T, B, classes]`` (any T; ``T`` here is its default for ``predict``).
    ``calibration``: tensor ``[N, ...]`` or iterable of batches, needed only for plain ReLUs
    (when every activation is a ClipReLU it is not read). ``max_batches`` (default 16) caps the
    calibration batches read, keeping conversion to seconds; ``None`` reads them all.
    """
    from spikingjelly.activation_based import ann2snn
    from torch.fx.proxy import TraceError

    from snnplug_opi.recipe import OPIRecipe

    if not isinstance(model, nn.Module):
        raise TypeError(f"convert(..., 'opi') expects an nn.Module ANN, got {type(model).__name__}")
    recipe = OPIRecipe(calibration, T=T, v_init=v_init, fold_bn=fold_bn, percentile=percentile,
                       max_batches=max_batches)
    try:
        return ann2snn.Converter(recipe, device=device).convert(model)
    except TraceError as exc:
        raise UnsupportedModuleError(
            f"torch.fx could not trace the ANN ({exc}); the OPI converter needs a forward() "
            f"without data-dependent control flow (no `if x.sum() > 0`, loops over tensor values)"
        ) from exc
