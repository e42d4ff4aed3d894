"""App. E cells (instab.studies.multilayer) through the one runner, on every engine."""

import pytest

from instab import grid
from instab.studies.multilayer import ThresholdConfig

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


def test_multilayer_cells_on_dask_equal_the_local_pool_bit_for_bit(tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra: pip install 'instab[cluster]'")
    cells = [CELL, CELL.__class__(**{**CELL.to_dict(), "alpha": 30.0, "hidden": (8,)}),
             CELL.__class__(**{**CELL.to_dict(), "trace_lr_factor": 1.5, "steps": 40, "hidden": (8,)})]
    local = grid.run_grid(cells, cache=tmp_path / "local", executor="local", workers=2, progress=False)
    dask = grid.run_grid(cells, cache=tmp_path / "dask", executor="dask-local", workers=2, progress=False)
    assert dask == local  # plain numbers and lists: == compares every float exactly
    assert len(list((tmp_path / "dask").glob("*.result"))) == 3
