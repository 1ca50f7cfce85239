"""Strategy ``opi-ann``: train the clip-ANN that OPI converts (Bu et al., AAAI 2022, Alg. 1 l.1-16).

The model is an ANN taking ``[B, ...]``: ReLUs are ``clip(x, 0, λ_l)`` with a trainable λ_l per
layer, max pooling is average pooling. ``loss`` and :meth:`~OPIANNStrategy.ann_logits` run the
ANN; ``forward``/``predict``/``predict_anytime`` always run the network that is deployed, the
*converted* SNN (θ = λ, v(0) = v_init·θ), so accuracy against T is the SNN's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnplug.checks import as_float, as_steps, copy_model
from snnplug.errors import SnnplugError, UnsupportedModuleError
from snnplug.strategies import OptimConfig, Strategy
from snnplug_opi.clip import ClipReLU

_AVG_FOR_MAX = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
_ADAPTIVE = {nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
             nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d}


def _avg_for(m: nn.Module, where: str) -> nn.Module:
    if type(m) in _ADAPTIVE:
        if m.return_indices:
            raise UnsupportedModuleError(f"{where}: {type(m).__name__}(return_indices=True) has no average-pool equivalent")
        return _ADAPTIVE[type(m)](m.output_size)
    dil = m.dilation if isinstance(m.dilation, tuple) else (m.dilation,)
    if any(d != 1 for d in dil) or m.return_indices:
        raise UnsupportedModuleError(
            f"{where}: {type(m).__name__} with dilation={m.dilation} / return_indices="
            f"{m.return_indices} has no average-pool equivalent; use a plain max pool or AvgPool"
        )
    return _AVG_FOR_MAX[type(m)](m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)


class OPIANNStrategy(Strategy):
    """Train a clipped-ReLU ANN for OPI conversion. See :func:`make_strategy`."""

    name = "opi-ann"
    default_epochs = 10

    def __init__(self, *, T: int = 16, frames: bool = False, init_upper: float = 4.0, min_upper: float = 1e-3,
                 upper_weight_decay: float = 1e-3, v_init: float = 0.5, channels: Sequence[int] = (32, 64),
                 hidden: int | None = None) -> None:
        super().__init__(T=T, frames=frames)
        if frames:
            raise SnnplugError("opi-ann trains an ANN on static images [B, ...]; event frames are not supported")
        self.init_upper = as_float("init_upper", init_upper, positive=True)
        self.min_upper = as_float("min_upper", min_upper, positive=True)
        self.upper_weight_decay = as_float("upper_weight_decay", upper_weight_decay, lo=0.0)
        self.v_init = as_float("v_init", v_init, lo=0.0, hi=1.0)
        self.channels = tuple(as_steps("channels", c) for c in channels)
        self.hidden = None if hidden is None else as_steps("hidden", hidden)
        self._snn_cache: tuple[Any, nn.Module] | None = None

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "frames": self.frames, "init_upper": self.init_upper, "min_upper": self.min_upper,
                "upper_weight_decay": self.upper_weight_decay, "v_init": self.v_init,
                "channels": list(self.channels), "hidden": self.hidden}

    def _clip(self) -> ClipReLU:
        return ClipReLU(self.init_upper, min_upper=self.min_upper)

    # -- construction ----------------------------------------------------------------------
    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """Images ``(C, H, W)``: :func:`snnplug.models.convnet` (conv-BN-clip blocks of ``channels``,
        2x2 average pooling, ``hidden`` units, default 128); flat ``(F,)``: :func:`snnplug.models.mlp`
        (one hidden layer of ``hidden`` units, default 512)."""
        from snnplug.models import convnet, mlp

        if len(input_shape) == 3:
            return convnet(input_shape, num_classes, activation=self._clip, pool="avg", channels=self.channels,
                           hidden=self.hidden or 128)
        if len(input_shape) == 1:
            return mlp(int(input_shape[0]), num_classes, activation=self._clip, hidden=(self.hidden or 512,))
        raise ValueError(f"opi-ann builds models for (C, H, W) or (F,) inputs, got {tuple(input_shape)}")

    def prepare(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with every ``nn.ReLU`` a :class:`ClipReLU` (λ = ``init_upper``) and
        every max pool the average pool of the same geometry (Alg. 1, lines 1-6). ReLUs called
        functionally (``F.relu``) cannot be swapped: the converter calibrates those instead."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"prepare expects an nn.Module, got {type(model).__name__}")
        model = copy_model(model, "opi-ann prepare")
        for pname, parent in list(model.named_modules()):
            for name, child in list(parent.named_children()):
                where = f"{pname}.{name}" if pname else name
                if type(child) is nn.ReLU:
                    setattr(parent, name, self._clip())
                elif type(child) in _AVG_FOR_MAX or type(child) in _ADAPTIVE:
                    setattr(parent, name, _avg_for(child, where))
        return model

    def optim_config(self) -> OptimConfig:
        """The paper's: SGD, lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule."""
        return OptimConfig(name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine")

    def param_groups(self, model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
        """Weights with ``cfg.weight_decay``; the clip bounds λ with ``upper_weight_decay``
        (paper: 1e-3 for VGG-16 on CIFAR-10)."""
        uppers = [m.upper for m in model.modules() if isinstance(m, ClipReLU) and m.upper.requires_grad]
        ids = {id(p) for p in uppers}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "weight_decay": cfg.weight_decay}]
        if uppers:
            groups.append({"params": uppers, "weight_decay": self.upper_weight_decay})
        return groups

    # -- running: the ANN for training, the converted SNN for inference --------------------
    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        raise SnnplugError("opi-ann trains an ANN on static batches [B, ...]; it has no encoder")

    def ann_logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The ANN's logits ``[B, C]`` (what ``loss`` trains)."""
        return model(x)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the ANN's logits."""
        logits = self.ann_logits(model, x)
        return F.cross_entropy(logits, y), logits

    def forward(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """The converted SNN's logits ``[B, C]``: mean output over ``T`` steps (default ``self.T``)."""
        return self.predict_anytime(model, x, T)[-1]

    def to_snn(self, model: nn.Module, T: int | None = None, **kw: Any) -> nn.Module:
        """Convert with OPI (θ = λ, v(0) = ``v_init``·θ); cached until the weights change."""
        from snnplug_opi.converter import convert

        steps = self.T if T is None else as_steps("T", T)
        key = (id(model), steps, tuple(sorted(kw.items())),
               tuple(p._version for p in model.parameters()),
               tuple(b._version for b in model.buffers()))
        if self._snn_cache is not None and self._snn_cache[0] == key:
            return self._snn_cache[1]
        kw.setdefault("v_init", self.v_init)
        was_training = model.training
        snn = convert(model, T=steps, **kw)
        model.train(was_training)
        self._snn_cache = (key, snn)
        return snn

    def inference_model(self, model: nn.Module) -> nn.Module:
        """The converted SNN (what spikes at inference), for spike and energy metrics."""
        return self.to_snn(model)

    def report(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, list[float]]]:
        """``snnplug run``'s OPI plot: anytime accuracy of v(0)=θ/2 against v(0)=0 (paper Fig. 4)."""
        curves = {}
        for label, c in (("v(0) = θ/2", 0.5), ("v(0) = 0", 0.0)):
            with torch.no_grad():
                out = self.to_snn(model, v_init=c).predict_anytime(x, self.T)
            curves[label] = (out.argmax(-1) == y).float().mean(1).tolist()
        with torch.no_grad():
            ann = float((self.ann_logits(model, x).argmax(-1) == y).float().mean())
        curves["ANN"] = [ann] * self.T
        return {"anytime accuracy": curves}

    def predict_anytime(self, model: nn.Module, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """The converted SNN's logits after every step ``t = 1..T``: ``[T, B, C]`` (one simulation)."""
        steps = self.T if T is None else as_steps("T", T)
        return self.to_snn(model).predict_anytime(x, steps)


def make_strategy(**kw: Any) -> OPIANNStrategy:
    r"""Strategy ``opi-ann``: train the source ANN of OPI conversion (Bu et al., "Optimized
    Potential Initialization for Low-latency Spiking Neural Networks", AAAI 2022, Alg. 1).

    Activation ``a_l = clip(W_l a_{l-1} + b_l, 0, λ_l)`` with trainable λ_l (init ``init_upper=4``,
    projected onto ``[min_upper, ∞)`` before each training forward), average pooling; SGD lr 0.1,
    momentum 0.9, wd 5e-4 (λ: ``upper_weight_decay=1e-3``), cosine schedule. ``T=16``/``v_init=0.5``
    configure the SNN that ``predict`` / ``predict_anytime`` / ``to_snn`` run; ``ann_logits`` runs the ANN.
    """
    return OPIANNStrategy(**kw)
