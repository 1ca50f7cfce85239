"""Reference architectures shared by the strategies.

``convnet`` builds the same small VGG-style network either as a SpikingJelly multi-step SNN
(``node=`` a factory of spiking nodes; input ``[T, B, C, H, W]``, output ``[T, B, classes]``)
or as an ANN (``activation=`` a factory such as ``nn.ReLU``; input ``[B, C, H, W]``). Same
layer order and shapes in both, so weights transfer one to one:

    [conv3x3 -> BN -> act] x n, with 2x2 average pooling after each of the first two blocks,
    flatten -> linear(hidden) -> BN1d -> act -> linear(classes)        (BN only with norm=True)

``backbone`` builds it (``convnet`` for images, ``mlp`` for flat inputs) with the sizes
``backbone_for(input_shape)`` picks: the shared backbone every method of ``snnplug run`` trains
on, so methods are compared on one network (each changes only its neurons, normaliser,
encoding and readout).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

ModuleFactory = Callable[[], nn.Module]


def _out_hw(hw: tuple[int, int], n_pools: int) -> tuple[int, int]:
    h, w = hw
    for _ in range(n_pools):
        h, w = h // 2, w // 2
    return h, w


def convnet(input_shape: Sequence[int], num_classes: int, *, node: ModuleFactory | None = None,
            activation: ModuleFactory | None = None, channels: Sequence[int] = (32, 64),
            hidden: int = 128, norm: bool = True, norm_factory: Callable[[int], nn.Module] | None = None,
            norm1d_factory: Callable[[int], nn.Module] | None = None, pool: str = "avg") -> nn.Sequential:
    """A small VGG-style net; SNN (``node``) or ANN (``activation``), see the module doc."""
    if (node is None) == (activation is None):
        raise ValueError("convnet needs exactly one of node= (SNN) or activation= (ANN)")
    if len(input_shape) != 3:
        raise ValueError(f"convnet expects input_shape (C, H, W), got {tuple(input_shape)}")
    c_in, h, w = (int(v) for v in input_shape)
    spiking = node is not None
    act = node if spiking else activation
    assert act is not None
    if spiking:
        from snnplug.backends.spikingjelly import sj

        L = sj().layer
        conv = lambda i, o: L.Conv2d(i, o, 3, padding=1, bias=not norm, step_mode="m")  # noqa: E731
        bn = norm_factory or (lambda c: L.BatchNorm2d(c, step_mode="m"))
        bn1d = norm1d_factory or (lambda c: L.BatchNorm1d(c, step_mode="m"))
        pool_layer = (lambda: L.AvgPool2d(2, step_mode="m")) if pool == "avg" else (lambda: L.MaxPool2d(2, step_mode="m"))
        flatten = lambda: L.Flatten(step_mode="m")  # noqa: E731
        linear = lambda i, o, bias=True: L.Linear(i, o, bias=bias, step_mode="m")  # noqa: E731
    else:
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, bias=not norm)  # noqa: E731
        bn = norm_factory or nn.BatchNorm2d
        bn1d = norm1d_factory or nn.BatchNorm1d
        pool_layer = (lambda: nn.AvgPool2d(2)) if pool == "avg" else (lambda: nn.MaxPool2d(2))
        flatten = nn.Flatten
        linear = lambda i, o, bias=True: nn.Linear(i, o, bias=bias)  # noqa: E731

    layers: list[nn.Module] = []
    n_pools = 0
    for i, c in enumerate(channels):
        layers.append(conv(c_in, c))
        if norm:
            layers.append(bn(c))
        layers.append(act())
        if i < 2 and min(_out_hw((h, w), n_pools + 1)) >= 1:
            layers.append(pool_layer())
            n_pools += 1
        c_in = c
    oh, ow = _out_hw((h, w), n_pools)
    layers += [flatten(), linear(c_in * oh * ow, hidden, bias=not norm)]
    if norm:
        layers.append(bn1d(hidden))
    layers += [act(), linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def mlp(input_size: int, num_classes: int, *, hidden: Sequence[int] = (512,), node: ModuleFactory | None = None,
        activation: ModuleFactory | None = None, pool: int = 1) -> nn.Sequential:
    """Flatten (optionally ``pool``x``pool`` average pool first) -> [linear -> act]* -> linear."""
    if (node is None) == (activation is None):
        raise ValueError("mlp needs exactly one of node= (SNN) or activation= (ANN)")
    act = node if node is not None else activation
    assert act is not None
    if node is not None:
        from snnplug.backends.spikingjelly import sj

        L = sj().layer
        pre = [L.AvgPool2d(pool, step_mode="m")] if pool > 1 else []
        layers: list[nn.Module] = pre + [L.Flatten(step_mode="m")]
        linear = lambda i, o: L.Linear(i, o, step_mode="m")  # noqa: E731
    else:
        layers = ([nn.AvgPool2d(pool)] if pool > 1 else []) + [nn.Flatten()]
        linear = nn.Linear
    size = input_size
    for h in hidden:
        layers += [linear(size, h), act()]
        size = h
    layers.append(linear(size, num_classes))
    return nn.Sequential(*layers)


#: images up to this size (largest side) get the wider shared backbone
SMALL_IMAGE = 16


def backbone_for(input_shape: Sequence[int]) -> dict[str, Any]:
    """Sizes of the shared backbone for inputs ``input_shape``: ``{"channels": [...], "hidden": n}``.

    Small images (8x8 digits): channels (32, 64), hidden 128. Larger ones (28x28): channels
    (16, 32), hidden 128, which keeps a few-thousand-image run of every method within minutes on
    two CPU cores (the convolutions at full resolution dominate the cost). Flat inputs: an MLP
    with one hidden layer of ``hidden`` units (``channels`` unused).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3 and max(shape[1:]) > SMALL_IMAGE:
        return {"channels": [16, 32], "hidden": 128}
    return {"channels": [32, 64], "hidden": 128}


def backbone(input_shape: Sequence[int], num_classes: int, *, node: ModuleFactory | None = None,
             activation: ModuleFactory | None = None, channels: Sequence[int] = (32, 64), hidden: int = 128,
             **kw: Any) -> nn.Sequential:
    """``convnet`` for ``(C, H, W)`` inputs, ``mlp`` (one hidden layer) for ``(F,)``; SNN with
    ``node``, ANN with ``activation``. ``kw`` goes to ``convnet`` (``norm``, ``norm_factory``, ...)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return convnet(shape, num_classes, node=node, activation=activation, channels=channels, hidden=hidden, **kw)
    if len(shape) == 1:
        return mlp(shape[0], num_classes, hidden=(int(hidden),), node=node, activation=activation)
    raise ValueError(f"the backbone takes (C, H, W) or (F,) inputs, got {shape}")
