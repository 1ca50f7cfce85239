"""Noise: single-step SNN training with membrane noise, converted to multi-step.

Jiang, C. & Zhang, Y., "A noise based novel strategy for faster SNN training". Registers the
neuron ``noise-lif``, the strategy ``noise`` and the converter ``noise-multistep``
(see :mod:`snnplug_noise.plugin`).
"""
