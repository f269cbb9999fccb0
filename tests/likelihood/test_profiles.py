"""Mass and light profiles against values recorded from PyAutoLens, and at singular points."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood.light import gaussian_basis_images
from likelihood.linear_light import support_points
from likelihood.mass import external_shear_deflections, isothermal_deflections
from tests.likelihood.conftest import truth_vector

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_profiles.json").read_text())
GRID = jnp.asarray(REFERENCE["grid"])


@pytest.mark.parametrize("case", REFERENCE["isothermal"], ids=lambda c: str(c["ell_comps"]))
def test_isothermal_matches_reference(case):
    deflections = isothermal_deflections(
        GRID, jnp.asarray(case["centre"]), jnp.asarray(case["ell_comps"]), case["einstein_radius"])
    np.testing.assert_allclose(deflections, case["deflections"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", REFERENCE["shear"], ids=lambda c: str(c["gamma"]))
def test_external_shear_matches_reference(case):
    deflections = external_shear_deflections(GRID, *case["gamma"])
    np.testing.assert_allclose(deflections, case["deflections"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", REFERENCE["gaussian"], ids=lambda c: str(c["sigma"]))
def test_gaussian_matches_reference(case):
    image = gaussian_basis_images(
        GRID, jnp.asarray(case["centre"]), jnp.asarray(case["ell_comps"]),
        np.array([case["sigma"]]))[:, 0]
    np.testing.assert_allclose(image, case["image"], rtol=1e-12, atol=1e-300)


def _traced_sum(params, grid):
    centre, ell_comps, einstein_radius, gamma = params
    alpha = isothermal_deflections(grid, centre, ell_comps, einstein_radius)
    alpha = alpha + external_shear_deflections(grid, gamma[0], gamma[1])
    return jnp.sum((grid - alpha) ** 2)


@pytest.mark.parametrize(
    "ell_comps", [(0.0, 0.0), (1e-9, 0.0), (0.0, 3e-3), (0.2, -0.1)], ids=str)
def test_gradients_are_finite_at_singular_points(ell_comps):
    """The centre itself, q = 1, q just off 1, and zero shear all give finite gradients."""
    grid = jnp.asarray([[0.0, 0.0], [0.3, -0.2], [1e-12, 0.0]])
    params = (jnp.zeros(2), jnp.asarray(ell_comps), 1.5, jnp.zeros(2))
    gradient = jax.grad(_traced_sum)(params, grid)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(gradient))


def test_finite_on_the_centre_and_axes_of_a_circular_lens_without_shear():
    """q = 1 exactly, zero shear, a grid point on the centre and others on the frame's axes.

    On the y axis beyond ~1" the 1e-16 floor of Psi rounds away, so y / Psi = 1 exactly, where the
    discarded closed form (arctanh) of the q = 1 series branch is singular.
    """
    centre = jnp.asarray([0.25, -0.5])
    grid = centre + jnp.asarray([[0.0, 0.0], [1.5, 0.0], [-2.0, 0.0], [0.0, 1.5], [0.3, -0.2]])
    params = (centre, jnp.zeros(2), 1.5, jnp.zeros(2))
    deflections = isothermal_deflections(grid, centre, jnp.zeros(2), 1.5)
    # A singular isothermal sphere: alpha = b theta / |theta| (zero at the centre, by the floor).
    np.testing.assert_allclose(deflections[1:4], [[1.5, 0.0], [-1.5, 0.0], [0.0, 1.5]], atol=1e-15)
    np.testing.assert_array_equal(deflections[0], [0.0, 0.0])

    def traced(params, grid):
        centre, ell_comps, einstein_radius, gamma = params
        alpha = isothermal_deflections(grid, centre, ell_comps, einstein_radius)
        return grid - alpha - external_shear_deflections(grid, gamma[0], gamma[1])

    for jacobian in (jax.jacrev, jax.jacfwd):
        leaves = jax.tree_util.tree_leaves(jacobian(traced, argnums=(0, 1))(params, grid))
        assert all(np.all(np.isfinite(leaf)) for leaf in leaves)


def test_log_evidence_gradient_is_finite_for_a_circular_lens_on_a_grid_point(small_mge_model):
    points = support_points(small_mge_model.grids)
    on_axis = points[points[:, 1] == 0.0]
    centre = on_axis[on_axis[:, 0] > 0][np.argmin(on_axis[on_axis[:, 0] > 0, 0])]
    assert np.any(np.all(points == centre, axis=1)) and np.any(np.abs(on_axis[:, 0] - centre[0]) > 1)
    theta = truth_vector(small_mge_model)
    names = small_mge_model.parameter_names
    for name, value in [("lens.mass.centre_0", centre[0]), ("lens.mass.centre_1", centre[1]),
                        ("lens.mass.ell_comps_0", 0.0), ("lens.mass.ell_comps_1", 0.0),
                        ("lens.shear.gamma_1", 0.0), ("lens.shear.gamma_2", 0.0)]:
        theta[names.index(name)] = value
    value, gradient = jax.jit(jax.value_and_grad(small_mge_model.log_evidence))(theta)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))


def test_isothermal_is_continuous_across_the_series_threshold():
    grid = jnp.asarray([[0.4, -0.9], [-1.1, 0.2]])
    below = isothermal_deflections(grid, (0.0, 0.0), (0.0, 2.4e-5), 1.3)
    above = isothermal_deflections(grid, (0.0, 0.0), (0.0, 2.6e-5), 1.3)
    np.testing.assert_allclose(below, above, rtol=1e-5)


def test_gradient_in_ellipticity_matches_finite_differences_near_q_equal_one():
    grid = jnp.asarray([[0.4, -0.9], [-1.1, 0.2], [0.7, 0.7]])

    def f(e1):
        return jnp.sum(isothermal_deflections(grid, (0.0, 0.0), (0.0, e1), 1.3))

    for e1 in (1e-6, 1e-3, 0.1):
        h = 1e-7
        numeric = (f(e1 + h) - f(e1 - h)) / (2 * h)
        np.testing.assert_allclose(jax.grad(f)(e1), numeric, rtol=1e-5)
