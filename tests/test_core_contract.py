"""Contract tests generated from the registry: every installed plugin builds, runs, is documented
(docstring + paper) and is named by at least one test (as timm does for its models)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from snnplug.errors import TimeStepError
from snnplug.registry import get_registry
from snnplug.strategies import Strategy

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted(get_registry().all(), key=lambda r: (r.family, r.name))
TEST_TEXT = "\n".join(p.read_text() for d in ("tests", "plugins", "integration_tests")
                      for p in (ROOT / d).rglob("test_*.py") if p.name != Path(__file__).name)


def test_builtin_plugins_all_load():
    assert get_registry().failures == [], get_registry().failures
    names = {r.name for r in RECORDS}
    assert {"bptt", "dsr", "bntt", "opi-ann", "noise", "opi", "noise-multistep", "dsr-if", "dsr-lif", "bntt"} <= names


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: f"{r.family}:{r.name}")
def test_documented_and_tested(rec):
    assert rec.doc, f"{rec.family} {rec.name!r}: its factory needs a docstring (equation + citation)"
    assert rec.paper.strip(), f"{rec.family} {rec.name!r}: cite the paper"
    assert f'"{rec.name}"' in TEST_TEXT or f"'{rec.name}'" in TEST_TEXT, f"no test names {rec.name!r}"


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.family == "neuron"], ids=lambda r: r.name)
def test_neuron_builds_and_runs_multistep(rec):
    m = rec.factory(T=4)
    x = torch.rand(4, 3, 5) * 2
    out = m(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(TimeStepError, match=r"built for T=4"):
        m(torch.rand(5, 3, 5))  # 5 steps into a T=4 neuron: an error that names the problem


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.family == "normalizer"], ids=lambda r: r.name)
def test_normalizer_builds_and_runs_multistep(rec):
    m = rec.factory(6, T=4)
    x = torch.randn(4, 3, 6, 5, 5)
    out = m(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.family == "strategy"], ids=lambda r: r.name)
def test_strategy_contract(rec):
    s = rec.factory()
    assert isinstance(s, Strategy) and s.name == rec.name
    again = rec.factory(**s.config())  # config() rebuilds it (checkpoints rely on this)
    assert again.config() == s.config()
    torch.manual_seed(0)
    model = s.build_model((1, 8, 8), 10)
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 10
    loss, logits = s.loss(model, x, y)
    assert logits.shape == (6, 10) and math.isfinite(float(loss.detach()))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    assert s.predict(model, x).shape == (6, 10)


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.family == "strategy"], ids=lambda r: r.name)
def test_strategy_declares_its_inputs_and_returns_one_type(rec):
    """The contract of snnplug.strategies: inputs declared at construction (T, frames), the
    inference T declared, one return type per method, schedules from OptimConfig, and the
    method-specific plots only through the optional Reporting protocol (run settings are registration data)."""
    from snnplug.errors import SnnplugError
    from snnplug.strategies import SCHEDULES, Reporting

    s = rec.factory(T=3)
    assert s.T == 3 and s.frames is False and s.config()["frames"] is False
    assert isinstance(s.inference_T, int) and s.inference_T >= s.T
    assert not hasattr(s, "frames_input") and not hasattr(s, "is_snn")
    try:
        framed = rec.factory(T=3, frames=True)
    except SnnplugError as exc:  # a method that cannot take event frames says so at construction
        assert "frames" in str(exc)
    else:
        assert framed.frames is True and framed.config()["frames"] is True
    assert s.optim_config().schedule in SCHEDULES
    torch.manual_seed(0)
    model = s.build_model((1, 8, 8), 10).eval()
    x = torch.rand(5, 1, 8, 8)
    opt, sched = s.make_optimizer(model, 2, 3)
    assert isinstance(opt, torch.optim.Optimizer) and (sched is None or hasattr(sched, "step"))
    out = s.predict(model, x)
    assert isinstance(out, torch.Tensor) and out.shape == (5, 10)
    anytime = s.predict_anytime(model, x)
    assert isinstance(anytime, torch.Tensor) and anytime.shape == (s.inference_T, 5, 10)
    assert not hasattr(s, "quick_overrides")  # run settings are registration data (StrategyPlugin.run_settings)
    if hasattr(s, "report"):
        assert isinstance(s, Reporting)
        series = s.report(model, x, torch.arange(5))
        assert all(isinstance(v, list) for lines in series.values() for v in lines.values())


def _synapse_shapes(model):
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.family == "strategy"], ids=lambda r: r.name)
def test_run_settings_build_and_the_shared_backbone_is_the_backbone(rec):
    """``snnplug run``'s registration data: its settings build the strategy; a method declaring
    ``shared_backbone`` builds exactly the shared backbone's synaptic layers (the same network as
    the ANN the report compares with), for 8x8 and 28x28 images; otherwise it says why not."""
    from snnplug.models import backbone, backbone_for

    assert isinstance(rec.run_settings, dict)
    rec.factory(**rec.run_settings)
    if not rec.shared_backbone:
        return
    assert rec.own_network == ""
    for shape in ((1, 8, 8), (1, 28, 28)):
        spec = backbone_for(shape)
        s = rec.factory(**rec.run_settings, **spec)
        ann = backbone(shape, 10, activation=torch.nn.ReLU, **spec)
        assert _synapse_shapes(s.build_model(shape, 10)) == _synapse_shapes(ann), (rec.name, shape)


def test_strategy_registration_checks_its_run_fields():
    from snnplug.types import StrategyPlugin

    def f(**kw):
        """doc"""

    with pytest.raises(ValueError, match="run_epochs must be a positive int or None, got 0"):
        StrategyPlugin(name="x", factory=f, paper="p", run_epochs=0)
    with pytest.raises(TypeError, match="run_settings must be a dict of keyword arguments"):
        StrategyPlugin(name="x", factory=f, paper="p", run_settings=[("T", 4)])
    with pytest.raises(ValueError, match="give own_network \\(why not\\) only with shared_backbone=False"):
        StrategyPlugin(name="x", factory=f, paper="p", shared_backbone=True, own_network="needs 3D input")
