"""Kind `delaunay` under jit, vmap and grad, and isolation of a degenerate lane in a batch."""

import dataclasses

import jax
import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset
from tests.likelihood.conftest import prior_draws, truth_vector

SETTINGS = ModelSettings(delaunay_overlay=(15, 15), lens_gaussians=10)


@pytest.fixture(scope="module")
def model():
    return build_model(dataclasses.replace(default_dataset(), mask_radius=1.5), "delaunay", SETTINGS)


@pytest.fixture(scope="module")
def batched(model):
    return jax.jit(jax.vmap(model.log_evidence))


@pytest.fixture(scope="module")
def theta(model):
    return truth_vector(model)


def test_parameters_are_the_lens_then_the_coefficient(model):
    assert model.parameter_names[-1] == "source.pixelization.coefficient"
    assert len(model.parameter_names) == 12


def test_vmap_equals_a_loop(model, batched):
    # Coefficients near 1: at lambda ~ 1e5 ln det H is ill-conditioned (H = lambda^2 A^T A + 1e-8 I
    # with A's constant null vector) and batched and single Cholesky kernels round differently.
    points = prior_draws(model, 3, seed=1)
    points[:, -1] = [0.5, 2.0, 8.0]
    single = jax.jit(model.log_evidence)
    np.testing.assert_allclose(batched(points), [single(p) for p in points], rtol=1e-10)


def test_degenerate_lane_leaves_the_others_bit_for_bit(model, batched, theta):
    points = np.stack([theta, theta, prior_draws(model, 1, seed=2)[0]])
    points[1, 8] = 1.02 * theta[8]
    clean = np.asarray(batched(points))
    points[1, 8] = np.nan  # an unphysical proposal: every traced position is NaN
    mixed = np.asarray(batched(points))
    assert np.all(np.isfinite(clean)) and np.isnan(mixed[1])
    np.testing.assert_array_equal(mixed[[0, 2]], clean[[0, 2]])


def test_gradients_are_finite_at_random_prior_points(model):
    points = prior_draws(model, 50, seed=3)
    gradients = np.asarray(jax.jit(jax.vmap(jax.grad(model.log_evidence)))(points))
    assert np.all(np.isfinite(gradients)), np.argwhere(~np.isfinite(gradients))
