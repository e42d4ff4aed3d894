import numpy as np
import pytest

from instab import bounds
from instab.pde import heat


def test_amplifier_matches_a_single_sine_mode_exactly():
    """A Dirichlet sine mode is an eigenvector of scheme (2): one step multiplies it by A(ω)."""
    x = heat.spatial_grid(30.0, 1.0)
    n = x.size - 2
    for j in (1, 7, n):
        for r in (0.1, 0.4, 0.8):
            u = np.sin(j * np.pi * x / 30.0)
            u[0] = u[-1] = 0.0
            ratio = heat.step(u, r)[1:-1] / u[1:-1]
            expected = bounds.heat_amplifier(bounds.heat_dirichlet_modes(n)[j - 1], r)
            np.testing.assert_allclose(ratio, expected, rtol=1e-9, atol=1e-12)


def test_amplifier_closed_forms():
    assert bounds.heat_amplifier(0.0, 0.3) == 1.0
    assert bounds.heat_amplifier(np.pi, 0.3) == pytest.approx(1 - 4 * 0.3)
    assert bounds.heat_amplifier_as_printed(np.pi, 0.3) == pytest.approx(1 - 2 * 0.3)
    assert bounds.cfl_bound(2.0) == 2.0
    assert bounds.heat_max_amplification(0.5) == pytest.approx(1.0)
    assert bounds.heat_max_amplification(0.8) == pytest.approx(2.2)


def test_dirichlet_threshold_tends_to_cfl():
    assert bounds.heat_dirichlet_threshold(29) > 0.5
    assert bounds.heat_dirichlet_threshold(10_000) == pytest.approx(0.5, rel=1e-6)
    # the measured threshold agrees with the exact one
    assert heat.empirical_cfl(31) == pytest.approx(bounds.heat_dirichlet_threshold(29), rel=1e-3)


def test_simulation_decays_below_and_blows_up_above_cfl():
    u0 = heat.triangle(heat.spatial_grid())
    assert heat.simulate(u0, 0.4, 300).sup[-1] < 0.3 * u0.max()
    assert heat.simulate(u0, 0.8, 300).sup[-1] > 1e50


def test_one_ulp_difference():
    u0 = heat.triangle(heat.spatial_grid())
    d_stable = heat.one_ulp_difference(u0, 0.4, 300)
    d_unstable = heat.one_ulp_difference(u0, 0.8, 300)
    assert d_stable[0] == d_unstable[0] == np.spacing(1.0)
    assert d_stable[-1] < d_stable[0]
    assert d_unstable[-1] > 1e50


@pytest.mark.parametrize("bad", [dict(r=0.0), dict(r=-1.0), dict(n_steps=-1)])
def test_bad_input_is_named(bad):
    args = dict(u0=heat.triangle(heat.spatial_grid()), r=0.4, n_steps=3) | bad
    with pytest.raises(ValueError, match=list(bad)[0]):
        heat.simulate(**args)
