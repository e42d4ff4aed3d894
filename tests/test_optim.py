"""PerturbedSGD (paper §4.1) against torch.optim.SGD: bitwise equal at k = 1, 2, 4 for every
hyper-parameter combination on both code paths; a last-bit difference at k = 3."""

import contextlib
import functools
import itertools
import warnings

import pytest
import torch

from instab.optim import PerturbedSGD

SHAPES = [(7, 3, 3, 3), (7,), (13, 5), (1,), (33,)]

# (momentum, dampening, nesterov, weight_decay, maximize): every combination torch accepts
CONFIGS = [(m, d, n, wd, mx)
           for m, d, n in [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.0, True), (0.9, 0.1, False)]
           for wd in (0.0, 5e-4) for mx in (False, True)]


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_() for s in SHAPES]


def _run(opt_cls, steps, kwargs, seed=0):
    params = _params(seed)
    opt = opt_cls(params, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return [p.detach().clone() for p in params]


def _ids(c):
    m, d, n, wd, mx = c
    return f"mom{m}-damp{d}-{'nest' if n else 'plain'}-wd{wd}-{'max' if mx else 'min'}"


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_bitwise_equal_to_torch_sgd_at_k_1_2_4(config, foreach):
    m, d, n, wd, mx = config
    kwargs = dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx, foreach=foreach)
    reference = _run(torch.optim.SGD, 4, kwargs)
    for k, form in itertools.product((1, 2, 4), ("paper", "release")):
        with pytest.warns(UserWarning, match="power of two") if k > 1 else _no_warning():
            ours = _run(functools.partial(PerturbedSGD, k=k, form=form), 4, kwargs)
        for a, b in zip(ours, reference, strict=True):
            assert torch.equal(a, b), f"k={k} form={form} differs from torch.optim.SGD"


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _ulp(x):
    x = x.abs()
    return torch.nextafter(x, torch.full_like(x, float("inf"))) - x


@pytest.mark.parametrize("form", ["paper", "release"])
@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("config", CONFIGS[::3], ids=[_ids(c) for c in CONFIGS[::3]])
def test_k3_differs_by_a_couple_of_ulps(config, foreach, form):
    m, d, n, wd, mx = config
    kwargs = dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx, foreach=foreach)
    # one step from the same state: the update differs only by the perturbation's rounding
    before = torch.cat([p.detach().flatten() for p in _params()])
    reference = torch.cat([p.flatten() for p in _run(torch.optim.SGD, 1, kwargs)])
    ours = torch.cat([p.flatten() for p in _run(lambda ps, **kw: PerturbedSGD(ps, k=3, form=form, **kw), 1,
                                                kwargs)])
    # the perturbed update (η/3)(3v) is within a couple of ulps of ηv; adding it to θ rounds once more
    scale = torch.maximum(torch.maximum(before.abs(), reference.abs()), (reference - before).abs())
    assert bool(((ours - reference).abs() <= 2 * _ulp(scale)).all())
    assert int((ours != reference).sum()) > 0


def test_single_tensor_and_foreach_paths_agree_at_k3():
    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, k=3)
    a = _run(lambda ps, **kw: PerturbedSGD(ps, foreach=False, **kw), 5, kwargs)
    b = _run(lambda ps, **kw: PerturbedSGD(ps, foreach=True, **kw), 5, kwargs)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_momentum_buffer_holds_the_unperturbed_value():
    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)
    params_ref, params_k = _params(), _params()
    ref, ours = torch.optim.SGD(params_ref, **kwargs), PerturbedSGD(params_k, k=3, **kwargs)
    g = torch.Generator().manual_seed(5)
    for p, q in zip(params_ref, params_k, strict=True):
        p.grad = torch.randn(p.shape, generator=g)
        q.grad = p.grad.clone()
    ref.step()
    ours.step()
    for p, q in zip(params_ref, params_k, strict=True):
        assert torch.equal(ref.state[p]["momentum_buffer"], ours.state[q]["momentum_buffer"])


def test_state_dict_round_trip_keeps_k_and_form():
    params = _params()
    opt = PerturbedSGD(params, lr=0.1, momentum=0.9, k=5, form="release")
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    other = PerturbedSGD(_params(), lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["k"] == 5 and other.param_groups[0]["form"] == "release"


@pytest.mark.parametrize("kwargs, word", [
    (dict(k=0), "k=0"), (dict(k=-3), "k=-3"), (dict(k=2.5), "k=2.5"), (dict(k=3.0), "k=3.0"),
    (dict(k=True), "k=True"), (dict(form="exact"), "exact"), (dict(lr=-0.1), "learning rate"),
])
def test_bad_arguments_raise(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PerturbedSGD(_params(), **{"lr": 0.1, **kwargs})


def test_perturbed_update_matches_the_optimizer_and_is_one_ulp_sized():
    from instab.optim import perturbed_update

    g = torch.Generator().manual_seed(3)
    v = torch.randn(10000, generator=g)
    for k, form in [(1, "paper"), (3, "paper"), (3, "release"), (7, "release")]:
        p = torch.zeros(10000, requires_grad=True)
        p.grad = v.clone()
        PerturbedSGD([p], lr=0.1, k=k, form=form).step()
        assert torch.equal(p.detach(), perturbed_update(v, 0.1, k, form))
    exact = perturbed_update(v, 0.1)
    rel = ((perturbed_update(v, 0.1, 3) - exact).norm() / exact.norm()).item()
    assert 2**-27 < rel < 2**-22
