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


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _params(seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(device).requires_grad_() for s in SHAPES]


def _run(opt_cls, steps, kwargs, seed=0, device="cpu"):
    params = _params(seed, device)
    opt = opt_cls(params, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g).to(device)
        opt.step()
    return [p.detach().cpu().clone() for p in params]


def _ids(c):
    m, d, n, wd, mx = c
    return f"mom{m}-damp{d}-{'nest' if n else 'plain'}-wd{wd}-{'max' if mx else 'min'}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_bitwise_equal_to_torch_sgd_at_k_1_2_4(config, foreach, device):
    m, d, n, wd, mx = config
    kwargs = dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx, foreach=foreach)
    reference = _run(torch.optim.SGD, 4, kwargs, device=device)
    for k, form in itertools.product((1, 2, 4), ("paper", "release")):
        with pytest.warns(UserWarning, match="power of two") if k > 1 else _no_warning():
            ours = _run(functools.partial(PerturbedSGD, k=k, form=form), 4, kwargs, device=device)
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("form", ["paper", "release"])
@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("config", CONFIGS[::3], ids=[_ids(c) for c in CONFIGS[::3]])
def test_k3_differs_by_a_couple_of_ulps(config, foreach, form, device):
    m, d, n, wd, mx = config
    kwargs = dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx, foreach=foreach)
    # one step from the same state: the update differs only by the perturbation's rounding
    before = torch.cat([p.detach().flatten() for p in _params()])
    reference = torch.cat([p.flatten() for p in _run(torch.optim.SGD, 1, kwargs, device=device)])
    ours = torch.cat([p.flatten() for p in _run(functools.partial(PerturbedSGD, k=3, form=form), 1, kwargs,
                                                device=device)])
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


def _run_stacked(ks_forms, steps, momentum, dampening, nesterov, weight_decay, seed=0, owned=False):
    """The stacked path on V copies of one set of parameters, each run with its own (k, form);
    ``owned``: with a workspace kept between steps and the gradients given away (no allocation)."""
    from instab.optim import stacked_perturbed_sgd

    base = _params(seed)
    params = [torch.stack([p.detach()] * len(ks_forms)) for p in base]
    bufs: list = [None] * len(params)
    work: list | None = [None] * len(params) if owned else None
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        grads = [torch.randn(p.shape[1:], generator=g).expand_as(p).contiguous() for p in params]
        stacked_perturbed_sgd(params, grads, bufs, weight_decay=weight_decay, momentum=momentum, lr=0.1,
                              dampening=dampening, nesterov=nesterov, k=[k for k, _ in ks_forms],
                              form=[f for _, f in ks_forms], workspace=work, grads_owned=owned)
    assert work is None or all(w is not None for w in work)
    return params


@pytest.mark.parametrize("config", [c for c in CONFIGS if not c[4]], ids=[_ids(c) for c in CONFIGS if not c[4]])
def test_stacked_path_k2_k4_equal_k1_k3_differs_and_places_do_not_matter(config):
    """The stacked path (the stacked engine's step): per run the algorithm of the other paths, in
    its own rounding, independent of the run's place in the stack and of the other runs."""
    m, d, n, wd, _ = config
    a = _run_stacked([(1, "paper"), (2, "paper"), (4, "release"), (3, "paper"), (3, "release")], 4, m, d, n, wd)
    b = _run_stacked([(3, "release"), (3, "paper"), (1, "paper")], 4, m, d, n, wd)
    c = _run_stacked([(3, "paper")], 4, m, d, n, wd)
    for pa, pb, pc in zip(a, b, c, strict=True):
        assert torch.equal(pa[0], pa[1]) and torch.equal(pa[0], pa[2])  # k = 2, 4 scale exactly
        assert torch.equal(pa[3], pb[1]) and torch.equal(pa[4], pb[0]) and torch.equal(pa[0], pb[2])
        assert torch.equal(pa[3], pc[0])
    assert any(not torch.equal(pa[0], pa[3]) for pa in a)  # k = 3 moves a last bit somewhere
    owned = _run_stacked([(1, "paper"), (2, "paper"), (4, "release"), (3, "paper"), (3, "release")],
                         4, m, d, n, wd, owned=True)
    assert all(torch.equal(pa, po) for pa, po in zip(a, owned, strict=True))  # no allocation, same bits
    sgd = _run(torch.optim.SGD, 4, dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd))
    for pa, ps in zip(a, sgd, strict=True):  # the same algorithm as torch's SGD, up to rounding
        torch.testing.assert_close(pa[0], ps, rtol=1e-5, atol=1e-6)


def _grads_after(opt_cls, kwargs, steps=3):
    """The .grad tensors after each step (an optimizer may overwrite them, as torch's does only
    for Nesterov)."""
    params = _params(0)
    opt = opt_cls(params, **kwargs)
    g = torch.Generator().manual_seed(1)
    seen = []
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
        seen.append([p.grad.clone() for p in params])
    return seen


@pytest.mark.parametrize("foreach", [False, True], ids=["single", "foreach"])
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
@pytest.mark.parametrize("k, form", [(3, "paper"), (3, "release")])
def test_the_gradients_are_left_as_torch_leaves_them(config, foreach, k, form):
    """A drop-in: after a step the .grad tensors hold what torch.optim.SGD leaves there (the
    perturbation never writes into a user's gradient)."""
    m, d, n, wd, mx = config
    kwargs = dict(lr=0.1, momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx, foreach=foreach)
    ours, torchs = _grads_after(PerturbedSGD, {**kwargs, "k": k, "form": form}), _grads_after(torch.optim.SGD, kwargs)
    for a, b in zip(ours, torchs, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
