"""``NoisyLIFNode``: the LIF neuron of Jiang & Zhang with membrane noise, stages 1-3.

Stage 1 (training, T=1) and stage 2 (inference, T=N) share one update, each step on its own
(eq. 6): ``H(t) = N_noise(t) + X(t)``, ``S(t) = 1[H(t) > V_th]``, with ``N_noise`` drawn fresh
for every neuron, sample and step. Stage 3 restores the potential term (eqs. 1, 3, 7-10)::

    H(t) = N(lambda V(t-1)) + N'(t) + X(t)
    S(t) = 1[H(t) > V_th]
    V(t) = H(t) (1 - S(t)) + V_reset S(t)

At the first step of a simulation (no V(t-1) yet) stage 3 uses the full ``N_noise``, so
T=1 gives the trained stage-1 network. Defaults are the paper's: lambda = 0.5, V_th = 1,
V_reset = 0, surrogate a = 3 (eq. 4), Gaussian noise on [0, 1], alpha = 4, beta = 0.5.

``seed``: ``None`` draws from torch's global generator (training: fresh noise every
iteration); an int gives the layer its own generator, re-seeded at every ``reset()``, so each
simulation (``reset_net`` then T steps) draws the same noise: reproducible inference.
``T`` (None: any) is the longest sequence accepted; the update itself does not depend on it.
``record_noise=True`` keeps the noise term added in the last call in ``last_noise`` (for
inspection and tests).

Jiang, C. & Zhang, Y., "A noise based novel strategy for faster SNN training".
"""

from __future__ import annotations

from typing import Any

import torch

from snnplug import kernels
from snnplug.backends.spikingjelly import memory_module_base
from snnplug.checks import as_float, as_steps, check_length, check_sequence
from snnplug.errors import ShapeError
from snnplug_noise import noise as N
from snnplug_noise.surrogate import PAPER_A, spike

STAGES = (1, 2, 3)


def check_stage(stage: Any) -> int:
    if isinstance(stage, bool) or stage not in STAGES:
        raise ValueError(f"stage must be 1, 2 or 3 (paper's stages), got {stage!r}")
    return int(stage)


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"seed must be None or a non-negative int, got {seed!r}")
    return int(seed)


class NoisyLIFNode(memory_module_base()):
    """Multi-step noisy LIF neuron ``[T, B, ...] -> [T, B, ...]`` (see the module docstring)."""

    snnplug_spiking = True

    def __init__(self, *, decay: float = 0.5, v_threshold: float = 1.0, v_reset: float = 0.0,
                 surrogate_a: float = PAPER_A, noise: str = "gaussian", noise_low: float = 0.0,
                 noise_high: float = 1.0, noise_std: float | None = None, stage: int = 1,
                 alpha: float = 4.0, beta: float = 0.5, seed: int | None = None,
                 record_noise: bool = False, T: int | None = None, step_mode: str = "m") -> None:
        super().__init__()
        #: longest sequence accepted in multi-step mode (None: any length)
        self.T = None if T is None else as_steps("T", T)
        self.decay = as_float("decay", decay, lo=0.0, hi=1.0)
        self.v_threshold = as_float("v_threshold", v_threshold, positive=True)
        self.v_reset = as_float("v_reset", v_reset)
        self.surrogate_a = as_float("surrogate_a", surrogate_a, positive=True)
        self.spec = N.NoiseSpec(noise, noise_low, noise_high, noise_std)
        self.stage = check_stage(stage)
        self.alpha = N.check_alpha(alpha)
        self.beta = as_float("beta", beta)
        N.residual_scale(self.spec, self.alpha)  # validates alpha against the noise range
        self.seed = check_seed(seed)
        self._gen: torch.Generator | None = None
        self._noise_steps: list[torch.Tensor] = []
        if not isinstance(record_noise, bool):
            raise TypeError(f"record_noise must be a bool, got {record_noise!r}")
        #: when True, ``last_noise`` holds the noise term added to H in the last call (detached)
        self.record_noise = record_noise
        self.last_noise: torch.Tensor | None = None
        self.register_memory("v", 0.0)
        self.step_mode = step_mode
        self.strict_T = True  # with T: sequences must have T steps (snnplug.checks.any_length relaxes it)

    # -- configuration ---------------------------------------------------------------
    def configure(self, *, stage: int | None = None, alpha: float | None = None,
                  beta: float | None = None, seed: int | None | str = "keep",
                  T: int | None | str = "keep") -> None:
        """Switch stage / stage-3 parameters / seed / T in place (validated like ``__init__``)."""
        new_alpha = self.alpha if alpha is None else N.check_alpha(alpha)
        N.residual_scale(self.spec, new_alpha)
        if stage is not None:
            self.stage = check_stage(stage)
        self.alpha = new_alpha
        if beta is not None:
            self.beta = as_float("beta", beta)
        if seed != "keep":
            self.seed = check_seed(seed)
            self._gen = None
        if T != "keep":
            self.T = None if T is None else as_steps("T", T)

    def settings(self) -> dict[str, Any]:
        return {"stage": self.stage, "alpha": self.alpha, "beta": self.beta, "seed": self.seed, "T": self.T}

    def extra_repr(self) -> str:
        s = self.spec
        return (f"T={self.T}, stage={self.stage}, decay={self.decay}, v_threshold={self.v_threshold}, "
                f"v_reset={self.v_reset}, a={self.surrogate_a}, noise={s.kind}[{s.low}, {s.high}], "
                f"alpha={self.alpha}, beta={self.beta}, seed={self.seed}, step_mode={self.step_mode}")

    # -- state -----------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._gen = None  # re-seeded at the next draw

    def _generator(self, like: torch.Tensor) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._gen is None or self._gen.device != like.device:
            self._gen = torch.Generator(device=like.device).manual_seed(self.seed)
        return self._gen

    # -- forward ---------------------------------------------------------------------
    def _step(self, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """One step given the ``N_noise`` sample ``xi`` for it."""
        v_prev = self.v
        if self.stage == 3 and isinstance(v_prev, torch.Tensor):
            if v_prev.shape != x.shape:
                raise ShapeError(
                    f"NoisyLIFNode state has shape {tuple(v_prev.shape)} but the input is {tuple(x.shape)}; "
                    f"call spikingjelly.activation_based.functional.reset_net(net) between batches"
                )
            noise = N.stage3_noise(v_prev, xi, self.spec, self.decay, self.alpha, self.beta)
        else:
            noise = xi
        if self.record_noise:
            self._noise_steps.append(noise.detach())
        h = noise + x
        s = spike(h, self.v_threshold, self.surrogate_a)
        if self.stage == 3:
            self.v = h * (1.0 - s) + self.v_reset * s
        return s

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"NoisyLIFNode expects a floating-point tensor [B, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ShapeError(f"NoisyLIFNode single step expects [B, ...] (rank >= 2), got shape {tuple(x.shape)}")
        self._noise_steps: list[torch.Tensor] = []
        out = self._step(x, N.draw(self.spec, x, self._generator(x)))
        self._keep_noise(single=True)
        return out

    def _keep_noise(self, single: bool) -> None:
        if self.record_noise:
            steps = self._noise_steps
            self.last_noise = steps[0] if single else torch.stack(steps)
        self._noise_steps = []

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """All steps' noise is drawn in one call (so stage 2 and stage 3 with alpha = inf see the
        same numbers); stages 1/2 then run vectorised over time, stage 3 step by step."""
        check_sequence(x_seq, who="NoisyLIFNode", min_rank=3, T=self.T, allow_shorter=True)
        check_length("NoisyLIFNode", x_seq, self.T, strict=self.strict_T)
        xi = N.draw(self.spec, x_seq, self._generator(x_seq))
        k = kernels.for_tensor(x_seq, "snnplug_noise.kernels")  # fused Triton kernels on CUDA
        if k is not None and not self.record_noise and not (torch.is_grad_enabled() and x_seq.requires_grad):
            return self._fused(k, x_seq, xi)
        if self.stage != 3:
            if self.record_noise:
                self.last_noise = xi.detach()
            return spike(xi + x_seq, self.v_threshold, self.surrogate_a)
        self._noise_steps = []
        out = torch.stack([self._step(x_seq[t], xi[t]) for t in range(x_seq.shape[0])])
        self._keep_noise(single=False)
        return out

    def _fused(self, k: Any, x_seq: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """Inference through :mod:`.kernels` (same noise ``xi``, same spikes as the torch path)."""
        if self.stage != 3:
            return k.stage2(x_seq, xi, self.v_threshold)
        v0 = self.v if isinstance(self.v, torch.Tensor) else None
        if v0 is not None and v0.shape != x_seq.shape[1:]:
            raise ShapeError(
                f"NoisyLIFNode state has shape {tuple(v0.shape)} but the input is {tuple(x_seq.shape[1:])}; "
                f"call spikingjelly.activation_based.functional.reset_net(net) between batches"
            )
        s, self.v = k.stage3(x_seq, xi, v0, self.spec, decay=self.decay, alpha=self.alpha, beta=self.beta,
                             v_threshold=self.v_threshold, v_reset=self.v_reset)
        return s
