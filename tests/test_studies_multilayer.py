"""App. E cells (instab.threshold) through the one runner, on every engine; the chapter's
(instab.studies.multilayer) parameters and claim rules on synthetic data (each rule holds and fails)."""

import numpy as np
import pytest

from instab import grid, threshold
from instab.studies import multilayer as study
from instab.threshold import ThresholdConfig

CELL = ThresholdConfig(network="mlp", alpha=100.0, dataset="synthetic", train_size=32, hidden=(8,), steps=100,
                       rtol=0.01)


def test_threshold_cell_tends_to_2_over_alpha_and_is_cached(tmp_path):
    [r] = grid.run_grid([CELL], cache=tmp_path, workers=1, progress=False)
    assert r["bound"] == pytest.approx(0.02)
    assert r["prediction"] == pytest.approx(2 / (100 + r["lambda0"]))
    assert 0.95 * r["prediction"] <= r["lr"] <= 0.02 * (1 + 0.01 + 2 * r["resolution"])
    assert len(list(tmp_path.glob("*.result"))) == 1
    [again] = grid.run_grid([CELL], cache=tmp_path, workers=1, progress=False)
    assert again == r
    with pytest.raises(ValueError, match="downsample"):
        ThresholdConfig(downsample=3).validate()
    with pytest.raises(ValueError, match="model"):
        ThresholdConfig(network="nope").validate()


def test_threshold_cell_flushes_subnormals_and_restores_them(monkeypatch):
    """The divergence cells compute with subnormals flushed to zero (a stable trial's weights decay
    through the subnormal range, slow on Intel CPUs); the caller's arithmetic keeps them."""
    import torch

    from instab import stability

    real, seen = stability.gradient_descent, []

    def spy(*args, **kwargs):
        seen.append(float(torch.tensor(1e-40) * 1.0))  # 0 when flushed
        return real(*args, **kwargs)

    monkeypatch.setattr(stability, "gradient_descent", spy)  # what the bisection's trials call
    threshold.run_threshold_cell(CELL)
    assert seen and all(v == 0.0 for v in seen)
    assert float(torch.tensor(1e-40) * 1.0) > 0  # restored


@pytest.mark.slow
def test_multilayer_cells_on_dask_equal_the_local_pool_bit_for_bit(tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra: pip install 'instab[cluster]'")
    cells = [CELL, CELL.__class__(**{**CELL.to_dict(), "alpha": 30.0, "hidden": (8,)}),
             CELL.__class__(**{**CELL.to_dict(), "trace_lr_factor": 1.5, "steps": 40, "hidden": (8,)})]
    local = grid.run_grid(cells, cache=tmp_path / "local", executor="local", workers=2, progress=False)
    dask = grid.run_grid(cells, cache=tmp_path / "dask", executor="dask-local", workers=2, progress=False)
    assert dask == local  # plain numbers and lists: == compares every float exactly
    assert len(list((tmp_path / "dask").glob("*.result"))) == 3


# ------------------------------------------------------------------ the chapter's parameters and claim rules
def by_name(claims):
    return {c.name: c for c in claims}


def test_params_default_is_valid_and_bad_values_are_named():
    p = study.Params().validate()
    assert len(p.plan().cells) == 3 * 5 and len(p.plan().traces) == 2
    assert p.upper() == 1 + 0.01 + 2 * np.log(10.0) / 400
    for bad in (dict(alphas=[1.0, 0.1]), dict(rtol=0.5), dict(workers=0), dict(trace_network="vgg"),
                dict(networks=["nope"])):
        with pytest.raises(ValueError, match=list(bad)[0] if "networks" not in bad else "model"):
            study.Params(**bad).validate()


def fig6(ratio, pred_ratio=1.0, lam0=5.0):
    alphas = [1.0, 10.0, 1000.0]
    bound = 2 / np.array(alphas)
    lr = np.array(ratio) * bound
    return study.Fig6(["mlp"], alphas, {}, {}, {"mlp": lam0}, {"mlp": lr}, bound,
                      {"mlp": lr / pred_ratio}, {"mlp": lr / bound})


def test_fig6_claims_hold():
    p = study.Params(steps=100, rtol=0.02)
    claims = by_name(study.fig6_claims(fig6([0.2, 0.7, 0.99], pred_ratio=1.02), p))
    assert len(claims) == 2 and all(c.ok for c in claims.values())
    assert all(c.shown_in == "fig-multilayer-fig6" for c in claims.values())
    assert claims["mlp: Δt*/(2/α) at the largest α"].paper is not None


def test_fig6_claims_fail():
    p = study.Params(steps=100, rtol=0.02)
    claims = by_name(study.fig6_claims(fig6([0.9, 0.5, 1.2], pred_ratio=0.9), p))
    assert not any(c.ok for c in claims.values())
    # a dip smaller than the bisection's precision still counts as rising
    ok = by_name(study.fig6_claims(fig6([0.5, 0.49, 1.0]), p))
    assert ok["mlp: Δt*/(2/α) rises with α"].ok


def edge(dev, gap, floor=(1.0, 1.02), ceiling=(0.5, 1.01)):
    return study.Edge(["mlp"], [{"lr": 0.1}], {"mlp": np.array([50.0])}, {"mlp": np.array(dev)},
                      {"mlp": np.array(gap)}, {"mlp": np.array(floor)}, {"mlp": np.array(ceiling)})


def test_edge_claims():
    p = study.Params()
    floor, ceiling, guess = study.edge_claims(edge([0.03, 0.01], [0.1, 0.001]), p)
    assert (floor.name, ceiling.name) == ("mlp: Δt* ≥ 0.95·2/(α+λ₀) at every α", "mlp: Δt* ≤ 2/α at every α")
    assert all(c.ok for c in (floor, ceiling, guess)) and (floor.verdict, ceiling.verdict) == ("extension",) * 2
    # the 5% guess, decided by the data: holds → extension, fails (at α = 10 λ₀) → refuted
    assert guess.name == "mlp: α ≥ 10λ₀ ⇒ Δt* within 5% of 2/(α+λ₀) (first guess)" and guess.verdict == "extension"
    guess = study.edge_claims(edge([0.08, 0.01], [0.1, 0.001]), p)[2]
    assert (guess.ok, guess.verdict, guess.sane) == (False, "refuted", True)
    assert study.edge_claims(edge([-0.06, 0.01], [0.1, 0.001]), p)[2].verdict == "refuted"
    # the floor and the ceiling fail when a cell (the α = 10 λ₀ one included) breaks them
    floor, ceiling, _ = study.edge_claims(edge([0.0], [0.1], floor=(1.0, 0.9), ceiling=(0.5, 1.2)), p)
    assert not floor.ok and not ceiling.ok
    ed = edge([0.08, -0.01], [0.1, 0.001])
    assert ed.max_dev() == 0.08 and ed.values()["mlp.alpha_ge_10_lambda0.max_deviation_from_64"] == 0.08


def trace(sharpness, lr=0.1, diverged=False):
    return {"sharpness": sharpness, "lr": lr, "diverged": diverged, "steps": [0, 10], "loss": [1.0, 0.5],
            "reason": "norm" if diverged else ""}


def test_sharpness_claims_hold_and_fail():
    good = study.Sharpness({0.001: trace([30.0, 15.0]), 0.1: trace([30.0, 25.0]), 50.0: trace([30.0, 10.0])},
                           [0.001, 0.1], 50.0)
    claims = study.sharpness_claims(good)
    assert [c.ok for c in claims] == [True, True, True]
    assert claims[1].name == "trace α=0.1: restrained — sharpness above 2/Δt, run bounded"
    assert good.values()["trace.alpha_10_lambda0.end_sharpness_over_threshold"] == 10.0 / 20.0
    bad = study.Sharpness({0.001: trace([30.0, 25.0]), 0.1: trace([30.0, 15.0]),
                           50.0: trace([30.0, 10.0], diverged=True)},
                          [0.001, 0.1], 50.0)
    assert [c.ok for c in study.sharpness_claims(bad)] == [False, False, False]
    one = study.Sharpness({0.001: trace([30.0, 15.0]), 50.0: trace([30.0, 10.0])}, [0.001], 50.0)
    assert len(study.sharpness_claims(one)) == 2
