"""BNTT's reference network: the core VGG-style ``convnet`` with BNTT after every conv/linear
(no biases there), BNTT LIF neurons, and an accumulating output layer.

    [conv3x3 -> BNTT2d -> LIF] x n (2x2 avg-pool after the first two), flatten,
    linear -> BNTT1d -> LIF, linear(classes) -> Accumulator

``norm="bn"`` builds the same network with ordinary (time-shared) BatchNorm instead of BNTT and
``norm="none"`` without normalisation: the paper's "w.o. BNTT" baselines.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snnplug.models import convnet

from snnplug_bntt.neuron import Accumulator, BNTTLIFNode
from snnplug_bntt.norm import BNTT


def bntt_convnet(input_shape: Sequence[int], num_classes: int, *, T: int = 25, leak: float = 0.99,
                 v_threshold: float = 1.0, surrogate_alpha: float = 0.3, eps: float = 1e-4,
                 momentum: float = 0.1, channels: Sequence[int] = (32, 64), hidden: int = 128,
                 norm: str = "bntt", init: str = "xavier") -> nn.Sequential:
    """The multi-step SNN ``[T, B, C, H, W] -> [T, B, classes]`` (accumulated potentials).

    ``init="xavier"`` uses the authors' ``xavier_uniform_(gain=2)`` for conv/linear weights;
    ``"torch"`` keeps PyTorch's defaults.
    """
    from snnplug.backends.spikingjelly import sj

    def neuron() -> nn.Module:
        return BNTTLIFNode(leak=leak, v_threshold=v_threshold, surrogate_alpha=surrogate_alpha)

    if norm == "bntt":
        kw = {"norm": True, "norm_factory": lambda c: BNTT(c, T=T, eps=eps, momentum=momentum, dim=2),
              "norm1d_factory": lambda c: BNTT(c, T=T, eps=eps, momentum=momentum, dim=1)}
    elif norm == "bn":
        L = sj().layer
        kw = {"norm": True, "norm_factory": lambda c: L.BatchNorm2d(c, eps=eps, momentum=momentum, step_mode="m"),
              "norm1d_factory": lambda c: L.BatchNorm1d(c, eps=eps, momentum=momentum, step_mode="m")}
    elif norm == "none":
        kw = {"norm": False}
    else:
        raise ValueError(f"norm must be 'bntt', 'bn' or 'none', got {norm!r}")
    net = convnet(input_shape, num_classes, node=neuron, channels=channels, hidden=hidden, **kw)
    net.append(Accumulator())
    if init == "xavier":
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                torch.nn.init.xavier_uniform_(m.weight, gain=2.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    elif init != "torch":
        raise ValueError(f"init must be 'xavier' or 'torch', got {init!r}")
    return net
