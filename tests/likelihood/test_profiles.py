"""Mass and light profiles against values recorded from PyAutoLens, and at singular points."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood.light import gaussian_basis_images
from likelihood.mass import external_shear_deflections, isothermal_deflections

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
