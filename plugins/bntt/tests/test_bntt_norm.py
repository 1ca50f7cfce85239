"""BNTT layer: METHODS.md §2 invariants, equality with SpikingJelly/snnTorch, state, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnplug.errors import ShapeError, TimeStepError
from snnplug_bntt.norm import BNTT, from_module

torch.set_num_threads(1)


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 1.5 + 0.3


def _gamma(T, C, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, C, generator=g) + 0.5


def _per_step_reference(bns, x):
    """Step t through the t-th torch BatchNorm: the definition of BNTT."""
    return torch.stack([bns[t](x[t]) for t in range(x.shape[0])])


@pytest.mark.parametrize("shape", [(4, 6, 3, 5, 5), (3, 8, 5), (3, 4, 5, 7)])
def test_equals_per_step_torch_batchnorm_train_and_eval(shape):
    T, C = shape[0], shape[2]
    gamma = _gamma(T, C)
    ours = BNTT(C, T=T)
    with torch.no_grad():
        ours.weight.copy_(gamma)
    bn_cls = nn.BatchNorm2d if len(shape) == 5 else nn.BatchNorm1d
    bns = [bn_cls(C, eps=1e-4, momentum=0.1) for _ in range(T)]
    for t, bn in enumerate(bns):
        bn.bias = None
        with torch.no_grad():
            bn.weight.copy_(gamma[t])
    x = _rand(*shape).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    g = _rand(*shape, seed=5)
    for _ in range(2):  # two training batches: running statistics accumulate
        ours.reset()
        y = ours(x)
        y_ref = _per_step_reference(bns, x_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, torch.stack([bn.weight.grad for bn in bns]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.running_mean, torch.stack([bn.running_mean for bn in bns]))
    torch.testing.assert_close(ours.running_var, torch.stack([bn.running_var for bn in bns]))
    assert ours.num_batches_tracked.tolist() == [2] * T
    ours.eval()
    for bn in bns:
        bn.eval()
    ours.reset()
    x2 = _rand(*shape, seed=9)
    torch.testing.assert_close(ours(x2), _per_step_reference(bns, x2), rtol=1e-5, atol=1e-5)


def test_equals_spikingjelly_batchnorm_through_time_2d():
    from spikingjelly.activation_based import functional, layer

    T, B, C = 5, 4, 3
    sj = layer.BatchNormThroughTime2d(T, C, eps=1e-4, step_mode="m")
    gamma = _gamma(T, C)
    with torch.no_grad():
        for t, bn in enumerate(sj.bn_list):
            bn.weight.copy_(gamma[t])
    ours = BNTT(C, T=T).load_bn_list(sj.bn_list)
    x = _rand(T, B, C, 4, 4).requires_grad_(True)
    xs = x.detach().clone().requires_grad_(True)
    y, ys = ours(x), sj(xs)
    torch.testing.assert_close(y, ys, rtol=1e-5, atol=1e-5)
    g = _rand(T, B, C, 4, 4, seed=3)
    y.backward(g)
    ys.backward(g)
    torch.testing.assert_close(x.grad, xs.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.weight.grad, torch.stack([bn.weight.grad for bn in sj.bn_list]),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.running_var, torch.stack([bn.running_var for bn in sj.bn_list]))
    ours.eval()
    sj.eval()
    ours.reset()
    functional.reset_net(sj)
    x2 = _rand(T, B, C, 4, 4, seed=4)
    torch.testing.assert_close(ours(x2), sj(x2), rtol=1e-5, atol=1e-5)


def test_equals_snntorch_batchnormtt2d():
    from snntorch._layers.bntt import BatchNormTT2d

    T, B, C = 4, 6, 2
    snt = BatchNormTT2d(C, T, eps=1e-4)
    with torch.no_grad():
        for t, bn in enumerate(snt):
            bn.weight.copy_(_gamma(T, C)[t])
    ours = BNTT(C, T=T).load_bn_list(snt)
    x = _rand(T, B, C, 3, 3)
    torch.testing.assert_close(ours(x), _per_step_reference(snt, x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.running_mean, torch.stack([bn.running_mean for bn in snt]))
    snt.eval()
    ours.eval()
    ours.reset()
    torch.testing.assert_close(ours(x), _per_step_reference(snt, x), rtol=1e-5, atol=1e-5)


def test_eval_map_is_exact_on_dyadic_values():
    # y = γ_t (x − μ_t)/√(σ²_t + ε) with ε = 0 and σ² = 4: every value is exactly representable
    ours = BNTT(1, T=2, eps=0.0).eval()
    with torch.no_grad():
        ours.weight.copy_(torch.tensor([[0.5], [2.0]]))
        ours.running_mean.copy_(torch.tensor([[1.0], [-0.5]]))
        ours.running_var.copy_(torch.tensor([[4.0], [0.25]]))
    x = torch.tensor([[[3.0], [-1.0]], [[0.5], [0.0]]])  # [T=2, B=2, C=1]
    want = torch.tensor([[[0.5 * 2.0 / 2.0], [0.5 * -2.0 / 2.0]], [[2.0 * 1.0 / 0.5], [2.0 * 0.5 / 0.5]]])
    assert torch.equal(ours(x), want)


def test_training_statistics_by_hand():
    # step 0: values {1, 3} -> μ = 2, σ² = 1 (biased), unbiased 2; no β
    ours = BNTT(1, T=1, eps=0.0, momentum=0.5)
    y = ours(torch.tensor([[[1.0], [3.0]]]))
    assert torch.equal(y, torch.tensor([[[-1.0], [1.0]]]))
    assert ours.running_mean.item() == 1.0  # 0.5·0 + 0.5·2
    assert ours.running_var.item() == 1.5  # 0.5·1 + 0.5·2
    assert not hasattr(ours, "bias") or ours.bias is None


def test_step_t_statistics_depend_only_on_step_t_data():
    T, C = 4, 3
    x = _rand(T, 5, C, 2, 2)
    a = BNTT(C, T=T)
    b = BNTT(C, T=T)
    x2 = x.clone()
    x2[[0, 1, 3]] = _rand(3, 5, C, 2, 2, seed=7) * 4  # change every step but t = 2
    ya, yb = a(x), b(x2)
    torch.testing.assert_close(ya[2], yb[2], rtol=0, atol=0)
    assert torch.equal(a.running_mean[2], b.running_mean[2]) and torch.equal(a.running_var[2], b.running_var[2])
    assert not torch.equal(a.running_mean[0], b.running_mean[0])


def test_shorter_sequences_use_the_first_steps_and_longer_raise():
    T, C = 6, 2
    full = BNTT(C, T=T)
    part = BNTT(C, T=T)
    with torch.no_grad():
        full.weight.copy_(_gamma(T, C))
        part.weight.copy_(_gamma(T, C))
    x = _rand(T, 4, C, 3)
    torch.testing.assert_close(part(x[:3]), full(x)[:3])
    assert part.num_batches_tracked.tolist() == [1, 1, 1, 0, 0, 0]
    part.reset()
    with pytest.raises(TimeStepError, match="T=6"):
        part(_rand(T + 1, 4, C, 3))


def test_pieces_continue_the_step_counter_until_reset():
    T, C = 4, 2
    whole, pieces = BNTT(C, T=T).eval(), BNTT(C, T=T).eval()
    with torch.no_grad():
        for m in (whole, pieces):
            m.weight.copy_(_gamma(T, C))
            m.running_mean.copy_(_rand(T, C, seed=2))
    x = _rand(T, 3, C)
    y = whole(x)
    pieces.step_mode = "s"
    ys = torch.stack([pieces(x[t]) for t in range(T)])
    torch.testing.assert_close(ys, y)
    with pytest.raises(TimeStepError, match="reset_net"):
        pieces(x[0])
    from spikingjelly.activation_based import functional

    functional.reset_net(pieces)
    torch.testing.assert_close(pieces(x[0]), y[0])


def test_state_dict_round_trip():
    T, C = 3, 4
    a = BNTT(C, T=T)
    with torch.no_grad():
        a.weight.copy_(_gamma(T, C))
    a(_rand(T, 8, C, 2, 2))
    sd = a.state_dict()
    assert set(sd) == {"weight", "running_mean", "running_var", "num_batches_tracked"}
    b = BNTT(C, T=T)
    b.load_state_dict(sd)
    a.eval()
    b.eval()
    a.reset()
    x = _rand(T, 2, C, 2, 2, seed=3)
    assert torch.equal(a(x), b(x))
    with pytest.raises(RuntimeError):
        BNTT(C, T=T + 1).load_state_dict(sd)


def test_errors_name_the_problem():
    m = BNTT(3, T=4, dim=2)
    with pytest.raises(ShapeError, match="channels"):
        m(torch.zeros(4, 2, 5, 2, 2))
    with pytest.raises(ShapeError, match="SeqToANNContainer"):
        m(torch.zeros(8, 3, 2, 2))
    with pytest.raises(TypeError, match="floating"):
        m(torch.zeros(4, 2, 3, 2, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match="more than 1 value"):
        BNTT(3, T=4)(torch.zeros(4, 1, 3))
    with pytest.raises(TypeError):
        BNTT(3, T=0)
    with pytest.raises(ValueError):
        BNTT(3, T=4, momentum=1.5)


def test_from_module_keeps_layout_and_copy_weights_rejects_beta():
    from spikingjelly.activation_based import layer

    old = layer.BatchNorm2d(5, step_mode="m")
    new = from_module(old, T=7)
    assert (new.T, new.num_features, new.dim, new.eps, new.momentum, new.step_mode) == (7, 5, 2, 1e-4, 0.1, "m")
    assert torch.equal(new.weight, torch.ones(7, 5))
    old1 = nn.BatchNorm1d(3)
    with torch.no_grad():
        old1.weight.fill_(0.5)
        old1.running_mean.fill_(0.25)
    copied = from_module(old1, T=2, copy_weights=True)
    assert torch.equal(copied.weight, torch.full((2, 3), 0.5))
    assert torch.equal(copied.running_mean, torch.full((2, 3), 0.25))
    with torch.no_grad():
        old1.bias.fill_(0.1)
    with pytest.raises(Exception, match="β"):
        from_module(old1, T=2, copy_weights=True)


def test_momentum_none_is_cumulative_average_like_torch():
    bn = nn.BatchNorm1d(2, eps=1e-4, momentum=None)
    bn.bias = None
    ours = BNTT(2, T=1, momentum=None)
    for s in range(3):
        x = _rand(1, 6, 2, seed=s)
        ours.reset()
        ours(x)
        bn(x[0])
    torch.testing.assert_close(ours.running_mean[0], bn.running_mean)
    torch.testing.assert_close(ours.running_var[0], bn.running_var)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    T, C = 3, 4
    cpu = BNTT(C, T=T)
    gpu = BNTT(C, T=T).cuda()
    x = _rand(T, 5, C, 3, 3).requires_grad_(True)
    xg = x.detach().cuda().requires_grad_(True)
    y, yg = cpu(x), gpu(xg)
    torch.testing.assert_close(yg.cpu(), y, rtol=1e-4, atol=1e-5)
    y.sum().backward()
    yg.sum().backward()
    torch.testing.assert_close(xg.grad.cpu(), x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gpu.running_var.cpu(), cpu.running_var)
