"""The power-law mass profile: against PyAutoLens, an independent integration of its convergence,
the isothermal profile at slope 2, finite, correct gradients at its singular points, and the
series' closed-form derivatives against autodiff through the sum."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from likelihood import power_law
from likelihood.geometry import axis_ratio_and_angle
from likelihood.mass import isothermal_deflections
from likelihood.power_law import (
    SERIES_TERMS,
    angular_series,
    hypergeometric_series,
    power_law_deflections,
)

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_profiles.json").read_text())


@pytest.mark.parametrize("case", REFERENCE["power_law"],
                         ids=lambda c: f"{c['ell_comps']}-{c['slope']}")
def test_power_law_matches_reference(case):
    """Deflections within 1e-10 of PyAutoLens's, on the centre and its neighbourhood too."""
    deflections = np.asarray(power_law_deflections(
        jnp.asarray(case["grid"]), jnp.asarray(case["centre"]), jnp.asarray(case["ell_comps"]),
        case["einstein_radius"], case["slope"]))
    expected = np.asarray(case["deflections"])
    norms = np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.all(np.abs(deflections - expected) <= 1e-10 * norms)


def integrated_deflections(y, x, q, einstein_radius, slope):
    """(alpha_y, alpha_x) in the profile frame by quadrature of the convergence (Keeton 2001,
    eq. 27 and 28; Schramm 1990): alpha_x = q x J_0, alpha_y = q y J_1 with
    J_n = int_0^1 kappa(xi(u)) / (1 - (1 - q^2) u)^(n + 1/2) du,
    xi(u)^2 = u (x^2 + y^2 / (1 - (1 - q^2) u)), for
    kappa(xi) = (3 - slope) / (1 + q) (einstein_radius / xi)^(slope - 1).
    The u^(-t/2) of the integrand is quad's algebraic weight."""
    t = slope - 1.0
    s2 = 1.0 - q * q

    def integral(n):
        def smooth(u):
            return ((2.0 - t) / (1.0 + q) * einstein_radius**t
                    * (x * x + y * y / (1.0 - s2 * u)) ** (-t / 2) / (1.0 - s2 * u) ** (n + 0.5))
        return quad(smooth, 0.0, 1.0, weight="alg", wvar=(-t / 2, 0.0), epsabs=0.0,
                    epsrel=1e-13, limit=200)[0]

    return q * y * integral(1), q * x * integral(0)


@pytest.mark.parametrize("slope", [1.5, 1.7, 2.0, 2.4, 2.95])
@pytest.mark.parametrize("ell_comps", [(0.0, 0.0), (0.0, 0.25), (0.0, 0.6)], ids=str)
def test_power_law_equals_the_integral_of_its_convergence(slope, ell_comps):
    """Profile frame (angle 0), points from 1e-3" of the centre out to 3"."""
    q = float(axis_ratio_and_angle(jnp.asarray(ell_comps))[0])
    grid = np.array([[1e-3, 2e-3], [-2e-3, 1e-3], [0.02, 0.01], [0.0, 0.01], [-0.01, 0.0],
                     [0.3, 0.7], [-1.0, 0.2], [2.0, -2.5], [1.0, 0.0], [0.0, -1.0]])
    deflections = np.asarray(power_law_deflections(grid, (0.0, 0.0), ell_comps, 1.2, slope))
    for (y, x), alpha in zip(grid, deflections, strict=True):
        expected = np.array(integrated_deflections(y, x, q, 1.2, slope))
        assert np.max(np.abs(alpha - expected)) <= 1e-10 * np.linalg.norm(expected), (y, x)


@pytest.mark.parametrize("ell_comps", [(0.0, 0.0), (1e-7, 0.0), (0.05, 0.12), (-0.3, 0.5)], ids=str)
def test_slope_two_is_the_isothermal_profile(ell_comps):
    grid = np.random.default_rng(1).uniform(-3.0, 3.0, (500, 2))
    centre = (0.05, -0.02)
    power_law = power_law_deflections(grid, centre, ell_comps, 1.3, 2.0)
    isothermal = isothermal_deflections(grid, centre, ell_comps, 1.3)
    scale = np.linalg.norm(np.asarray(isothermal), axis=1, keepdims=True)
    assert np.all(np.abs(np.asarray(power_law - isothermal)) <= 1e-10 * scale)


def test_the_centre_points_along_x():
    """The reference's convention at the exact centre: phi = 0 (+x), where at slope 2 the series
    is 2F1(1, 1/2; 3/2; -f) = arctan(sqrt f) / sqrt f (the isothermal profile gives zero)."""
    f = 0.2
    q = (1.0 - f) / (1.0 + f)
    alpha = np.asarray(power_law_deflections(jnp.zeros((1, 2)), (0.0, 0.0), (0.0, f), 1.3, 2.0))
    expected = 4.0 * 1.3 * q / (1.0 + q) ** 2 * np.arctan(np.sqrt(f)) / np.sqrt(f)
    np.testing.assert_allclose(alpha[0], [0.0, expected], rtol=1e-13)


def test_series_terms_converge_at_the_flattest_supported_lens():
    """f = 0.8 (q = 0.11) converges to 1e-12 with SERIES_TERMS, against twice as many terms."""
    phi = jnp.linspace(0.0, jnp.pi, 41)
    direction = jnp.exp(1j * phi)
    for t in (0.5, 1.0, 1.6, 1.98):
        truncated = angular_series(direction, 0.8, t)
        converged = angular_series(direction, 0.8, t, terms=2 * SERIES_TERMS)
        assert np.max(np.abs(truncated - converged) / np.abs(converged)) < 1e-12


def _summed(params, grid):
    centre, ell_comps, einstein_radius, slope = params
    return jnp.sum(power_law_deflections(grid, centre, ell_comps, einstein_radius, slope) ** 2)


@pytest.mark.parametrize("slope", [1.5, 1.5 + 1e-9, 2.0, 2.0 + 1e-9, 3.0 - 1e-9, 3.0])
@pytest.mark.parametrize("ell_comps", [(0.0, 0.0), (1e-9, 0.0), (0.0, 1e-6), (0.2, -0.1)], ids=str)
def test_gradients_are_finite_at_singular_points(slope, ell_comps):
    """A pixel on the centre, q = 1 and just off it, the slope at 2 and at the prior's edges."""
    grid = jnp.asarray([[0.0, 0.0], [0.3, -0.2], [1e-12, 0.0], [0.0, 1.5]])
    params = (jnp.zeros(2), jnp.asarray(ell_comps), 1.5, slope)
    for jacobian in (jax.grad, jax.jacfwd):
        leaves = jax.tree_util.tree_leaves(jacobian(_summed)(params, grid))
        assert all(np.all(np.isfinite(leaf)) for leaf in leaves)


def test_massless_lens_is_finite():
    grid = jnp.asarray([[0.0, 0.0], [0.3, -0.2]])
    params = (jnp.zeros(2), jnp.asarray((0.1, 0.0)), 0.0, 1.7)
    assert _summed(params, grid) == 0.0
    gradient = jax.grad(_summed)(params, grid)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(gradient))


@pytest.mark.parametrize("e1", [1e-7, 1e-3, 0.3])
@pytest.mark.parametrize("slope", [1.6, 2.0, 2.7])
def test_gradient_matches_central_differences(e1, slope):
    """Every parameter, including q within 1e-6 of 1 (e1 = 1e-7: q = 1 - 2e-7)."""
    grid = jnp.asarray([[0.4, -0.9], [-1.1, 0.2], [0.7, 0.7], [0.01, 0.02]])
    theta = np.array([0.02, -0.01, 0.0, e1, 1.3, slope])

    def f(theta):
        return jnp.sum(power_law_deflections(grid, theta[:2], theta[2:4], theta[4], theta[5]))

    gradient = np.asarray(jax.grad(f)(jnp.asarray(theta)))
    for i in range(len(theta)):
        h = np.zeros_like(theta)
        # Steps on ell_comps well inside |e|: |e| has a kink at e = 0.
        h[i] = 1e-2 * e1 if i in (2, 3) else 1e-6
        numeric = (f(theta + h) - f(theta - h)) / (2 * h[i])
        np.testing.assert_allclose(gradient[i], numeric, rtol=1e-4, atol=1e-6, err_msg=str(i))


@pytest.mark.parametrize("t", [0.5, 0.7, 1.0, 1.0 + 1e-9, 1.4, 1.98, 2.0])
@pytest.mark.parametrize("f", [0.0, 1e-9, 1e-4, 0.3, 0.8, 0.9])
def test_series_derivatives_equal_autodiff_through_the_sum(f, t):
    """The custom JVP (dS/dw and dS/dt from the same terms) against jax.jvp through the Horner
    loop itself (`hypergeometric_series.fun`), in w and t together, at angles around the circle."""
    w = -f * jnp.exp(2j * jnp.linspace(0.0, jnp.pi, 25))
    w_dot = jnp.exp(1j * jnp.linspace(0.3, 5.0, 25))  # a complex tangent per point
    primals, tangents = (w, jnp.asarray(t)), (w_dot, jnp.asarray(0.7))
    value, derivative = jax.jvp(hypergeometric_series, primals, tangents)
    expected_value, expected = jax.jvp(hypergeometric_series.fun, primals, tangents)
    np.testing.assert_array_equal(value, expected_value)
    np.testing.assert_allclose(derivative, expected, rtol=1e-13)


def _plain_autodiff(monkeypatch):
    """Make `power_law_deflections` differentiate through the series' loop (no custom JVP)."""
    monkeypatch.setattr(power_law, "hypergeometric_series", hypergeometric_series.fun)


# (centre, ell_comps, slope): the exact centre on a pixel, q within 1e-9, 1e-7 and 1e-6 of 1,
# slope 2 and the prior's edges, and a flat lens.
GRADIENT_POINTS = [((0.0, 0.0), (0.0, 0.0), 2.0), ((0.0, 0.0), (1e-9, 0.0), 1.5),
                   ((0.013, -0.021), (1e-7, 2e-8), 2.0), ((0.013, -0.021), (0.0, 1e-6), 3.0),
                   ((0.0, 0.0), (0.05, 0.12), 2.4), ((0.013, -0.021), (0.05, 0.12), 1.7),
                   ((0.013, -0.021), (-0.3, 0.5), 2.0 + 1e-9), ((0.0, 0.0), (0.0, 0.8), 2.95)]
GRADIENT_GRID = jnp.asarray(np.concatenate([
    np.random.default_rng(3).uniform(-3.0, 3.0, (200, 2)),
    [[0.0, 0.0], [1e-12, 0.0], [0.0, 1e-12], [1e-3, -2e-3]]]))


def _weighted(theta):
    """A scalar of every deflection: (N, 2) fixed weights times the deflections at theta (6,)."""
    weights = jnp.asarray(np.random.default_rng(4).standard_normal(GRADIENT_GRID.shape))
    deflections = power_law_deflections(GRADIENT_GRID, theta[:2], theta[2:4], theta[4], theta[5])
    return jnp.sum(weights * deflections)


def test_jit_vmap_value_and_grad_equals_autodiff_through_the_sum(monkeypatch):
    """The service's transformation, jit(vmap(value_and_grad)), of the deflections equals the same
    transformation of the loop without the custom JVP: values to 1e-13, gradients to 1e-12 of the
    largest component at every point. (Two programs, e.g. this one and an eager loop, differ by
    up to 1e-10 near q = 1: see `test_forward_mode_equals_autodiff_through_the_sum`.)"""
    thetas = jnp.asarray([[*c, *e, 1.3, s] for c, e, s in GRADIENT_POINTS])
    values, gradients = jax.jit(jax.vmap(jax.value_and_grad(_weighted)))(thetas)
    _plain_autodiff(monkeypatch)
    expected_values, expected = jax.jit(jax.vmap(jax.value_and_grad(lambda t: _weighted(t))))(thetas)
    np.testing.assert_allclose(values, expected_values, rtol=1e-13)
    assert np.all(np.max(np.abs(gradients - expected), axis=1)
                  <= 1e-12 * np.max(np.abs(expected), axis=1))


def test_forward_mode_equals_autodiff_through_the_sum(monkeypatch):
    """jacfwd through the custom JVP against jacfwd through the loop. Near q = 1 the derivative in
    ell_comps is d(angle)/d(ell_comps) ~ 1/|e| times a deflection change ~ |e|, so rounding is
    amplified by 1/|e| in either program (jacfwd and grad of the same program differ as much);
    the points here keep |e| >= 0.05."""
    thetas = [jnp.asarray([*c, *e, 1.3, s]) for c, e, s in GRADIENT_POINTS if max(map(abs, e)) >= 0.05]
    jacobians = [jax.jacfwd(_weighted)(theta) for theta in thetas]
    _plain_autodiff(monkeypatch)
    for theta, jacobian in zip(thetas, jacobians, strict=True):
        expected = jax.jacfwd(_weighted)(theta)
        assert np.max(np.abs(jacobian - expected)) <= 1e-12 * np.max(np.abs(expected))


@pytest.mark.parametrize("ell_comps", [(0.0, 1e-4), (0.05, 0.12), (-0.3, 0.5)], ids=str)
def test_slope_two_gradient_is_the_isothermal_gradient(ell_comps):
    """d/d(centre, ell_comps, einstein_radius) of the deflections at slope 2 equal the isothermal
    profile's (off the exact centre, where the two conventions differ). Not closer to q = 1: the
    two programs' rounding in d/d(ell_comps) grows as 1/|e| (5e-9 relative at |e| = 1e-6)."""
    grid = GRADIENT_GRID[:200]

    def weighted(deflections):
        return jnp.sum(jnp.asarray(np.random.default_rng(4).standard_normal(grid.shape))
                       * deflections)

    theta = jnp.asarray([0.013, -0.021, *ell_comps, 1.3])
    gradient = jax.grad(lambda p: weighted(power_law_deflections(grid, p[:2], p[2:4], p[4], 2.0)))(
        theta)
    expected = jax.grad(lambda p: weighted(isothermal_deflections(grid, p[:2], p[2:4], p[4])))(
        theta)
    assert np.max(np.abs(gradient - expected)) <= 1e-10 * np.max(np.abs(expected))
