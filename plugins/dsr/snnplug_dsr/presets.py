"""The paper's defaults (Meng et al., CVPR 2022; authors' code github.com/qymeng94/DSR).

IF:  T=20, Vth=6 (initial, trained), alpha=0.5, Vth_bound=0.01.
LIF: T=20, Vth=0.3, tau=1, dt=0.05, alpha=0.3, Vth_bound=5e-4.
Optimiser (CIFAR, 200 epochs): SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine schedule;
the thresholds take the same 5e-4 as an L2 penalty (the authors put them under weight decay).

SpikingJelly 2.x ``DSRLIFNode`` defaults differ (Vth=1.0, tau=2.0, Vth_bound=0.1).
"""

from __future__ import annotations

from typing import Any

IF_DEFAULTS: dict[str, Any] = {"T": 20, "v_threshold": 6.0, "alpha": 0.5, "v_threshold_bound": 0.01}
LIF_DEFAULTS: dict[str, Any] = {"T": 20, "v_threshold": 0.3, "tau": 1.0, "dt": 0.05, "alpha": 0.3,
                                "v_threshold_bound": 5e-4}
THRESHOLD_L2 = 5e-4
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
