"""RelL1 (paper §4.2) and prediction disagreement."""

import math

import pytest
import torch

from instab.metrics import (
    disagreement,
    mean_pairwise_disagreement,
    rel_l1,
    rel_l1_stacked,
    relative_error,
)
from instab.models import build_model


def test_rel_l1_hand_computed():
    a = [torch.tensor([1.0, 2.0, 0.0]), torch.tensor([[-1.0]])]
    b = [torch.tensor([1.0, 1.0, 0.0]), torch.tensor([[1.0]])]
    # terms: 0, 1/3, 0 (both zero), 2/2 = 1  →  (2/4)·(4/3)
    assert rel_l1(a, b) == pytest.approx(2 / 4 * (1 / 3 + 1))
    assert rel_l1(a, a) == 0.0
    assert rel_l1(a, b) == rel_l1(b, a)


def test_rel_l1_is_bounded_by_two_and_reaches_it_for_opposite_signs():
    a = torch.randn(1000)
    assert rel_l1([a], [-a]) == pytest.approx(2.0)
    assert 0 < rel_l1([a], [torch.randn(1000)]) < 2


def test_rel_l1_one_ulp_is_about_two_to_the_minus_23():
    a = torch.rand(10000) + 0.5
    b = torch.nextafter(a, torch.full_like(a, 10.0))
    assert 2**-25 < rel_l1([a], [b]) < 2**-22


def test_rel_l1_non_finite_gives_nan_not_zero():
    a = torch.tensor([1.0, float("nan")])
    assert math.isnan(rel_l1([a], [a]))
    inf = torch.tensor([float("inf"), 1.0])
    assert math.isnan(rel_l1([inf], [inf]))


def test_rel_l1_modules_and_state_dicts_leave_out_batchnorm_statistics():
    m1 = build_model("cnn_bn", in_channels=1, num_classes=10, seed=0)
    m2 = build_model("cnn_bn", in_channels=1, num_classes=10, seed=0)
    m2.train()
    m2(torch.randn(8, 1, 28, 28))  # changes running statistics only
    assert rel_l1(m1, m2) == 0.0
    assert rel_l1(m1.state_dict(), m2.state_dict()) == 0.0
    with torch.no_grad():
        next(m2.parameters())[0, 0, 0, 0] += 1.0
    assert rel_l1(m1, m2) > 0 and rel_l1(m1.state_dict(), m2.state_dict()) == rel_l1(m1, m2)


def test_rel_l1_per_layer_breakdown():
    a = [torch.ones(3), torch.ones(1)]
    b = [torch.ones(3), -torch.ones(1)]
    layers = rel_l1(a, b, per_layer=True)
    assert layers == {"0": 0.0, "1": 2.0}
    assert rel_l1(a, b) == pytest.approx((3 * layers["0"] + 1 * layers["1"]) / 4)


def test_rel_l1_rejects_mismatched_weights():
    with pytest.raises(ValueError, match="shape"):
        rel_l1([torch.ones(3)], [torch.ones(4)])
    with pytest.raises(ValueError, match="names"):
        rel_l1([torch.ones(3)], [torch.ones(3), torch.ones(1)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rel_l1_stacked_is_rel_l1_of_each_run_bitwise(dtype):
    # odd sizes too: a run's row starts at an offset that is not a multiple of the vector width
    g = torch.Generator().manual_seed(0)
    shapes = [(64, 784), (64,), (32, 64), (32,), (10, 32), (10,), (7, 3, 3, 3), (5,), (1,)]
    for runs in (1, 2, 3, 16):
        stacked = [torch.randn(runs, *s, generator=g, dtype=dtype) for s in shapes]
        for t in stacked:  # runs close to run 0 (the measure's use), a few equal or zero elements
            t[1:] = t[:1] * (1 + 1e-6 * torch.randn(t[1:].shape, generator=g, dtype=dtype))
            t.view(runs, -1)[:, :1] = 0.0
        stacked[2].view(runs, -1)[-1, 3] = math.nan if runs > 1 else 0.0
        got = rel_l1_stacked(stacked)
        want = [0.0] + [rel_l1([t[0] for t in stacked], [t[i] for t in stacked]) for i in range(1, runs)]
        assert len(got) == runs
        assert [x.hex() for x in got] == [x.hex() for x in want]
        if runs > 1:
            assert math.isnan(got[-1]) and all(0 < x < 1e-4 for x in got[1:-1])


def test_rel_l1_stacked_rejects_bad_stacks():
    with pytest.raises(ValueError, match="no parameters"):
        rel_l1_stacked([])
    with pytest.raises(ValueError, match="different numbers of runs"):
        rel_l1_stacked([torch.ones(2, 3), torch.ones(3, 3)])


def test_disagreement():
    a = torch.tensor([0, 1, 2, 3] * 25)
    b = a.clone()
    b[:10] = (b[:10] + 1) % 4
    assert disagreement(a, b) == pytest.approx(0.1)
    logits = torch.nn.functional.one_hot(a, 4).float()
    assert disagreement(logits, a) == 0.0
    assert mean_pairwise_disagreement([a, a, b]) == pytest.approx((0 + 0.1 + 0.1) / 3)


def test_relative_error():
    g = [torch.tensor([3.0, 4.0])]
    assert relative_error([torch.tensor([3.0, 4.5])], g) == pytest.approx(0.1)
