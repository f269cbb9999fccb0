"""Kind `rectangular`: transformations (jit, vmap, grad) and parity with PyAutoLens."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset
from likelihood.kinds.rectangular import source_plane_grid
from tests.likelihood.conftest import prior_draws, truth_vector
from tests.likelihood.parity import record_parity, recorded


@pytest.fixture(scope="module", params=["rank", "kernel"])
def model(request):
    dataset = dataclasses.replace(default_dataset(), mask_radius=1.5)
    settings = ModelSettings(mesh_shape=(12, 12), lens_gaussians=10,
                             rectangular_transform=request.param)
    return build_model(dataset, "rectangular", settings)


def test_parameters_are_the_lens_then_the_coefficient(model):
    assert model.parameter_names[-1] == "source.pixelization.coefficient"
    assert len(model.parameter_names) == 12


def test_jit_equals_eager_and_vmap_equals_loop(model):
    points = np.stack([truth_vector(model)] + list(prior_draws(model, 2, seed=3)))
    loop = np.array([float(model.log_evidence(p)) for p in points])
    assert np.all(np.isfinite(loop))
    np.testing.assert_allclose(float(jax.jit(model.log_evidence)(points[0])), loop[0], rtol=1e-10)
    batched = np.asarray(jax.jit(jax.vmap(model.log_evidence))(jnp.asarray(points)))
    np.testing.assert_allclose(batched, loop, rtol=1e-10)


def test_edge_pixels_are_exactly_zero(model):
    amplitudes = np.asarray(jax.jit(model.inversion)(truth_vector(model)).amplitudes)
    assert np.all(amplitudes[:144][~model.static.keep[:144]] == 0.0)


def test_gradients_finite_at_prior_draws(model):
    points = jnp.asarray(prior_draws(model, 50, seed=7))
    # Ten lanes at a time bounds the kernel mesh's (queries x knots) workspace.
    gradients = np.asarray(jax.jit(
        lambda p: jax.lax.map(jax.grad(model.log_evidence), p, batch_size=10))(points))
    assert np.all(np.isfinite(gradients))


def test_gradient_finite_when_many_traced_points_coincide(model):
    """A round lens centred on the grid: traced points tie exactly by symmetry (the seed's case)."""
    theta = truth_vector(model)
    # Mass centred on a pixel, axes along the pixel grid, no shear: mirrored pixels trace to
    # exactly equal coordinates. (ell_comps = (0, 0) would add the Isothermal's r = 0, q = 1
    # point, a separate singularity of the mass profile.)
    theta[4:8] = [0.0, 0.0, 0.0, 0.1]
    theta[9:11] = 0.0
    traced = np.sort(np.asarray(source_plane_grid(model, theta)), axis=0)
    assert np.mean(np.diff(traced, axis=0) == 0.0) > 0.3
    assert np.all(np.isfinite(np.asarray(jax.jit(jax.grad(model.log_evidence))(theta))))


def test_kernel_gradient_matches_central_differences(model):
    if model.settings.rectangular_transform != "kernel":
        pytest.skip("the rank mesh's likelihood is piecewise constant in the lens mass")
    theta = truth_vector(model) + np.random.default_rng(0).normal(0, 0.02, 12)
    gradient = np.asarray(jax.jit(jax.grad(model.log_evidence))(theta))
    value = jax.jit(model.log_evidence)
    step = 1e-6
    differences = np.array([(value(theta + step * e) - value(theta - step * e)) / (2 * step)
                            for e in np.eye(12)])
    np.testing.assert_allclose(gradient, differences, rtol=1e-4, atol=1e-4 * np.abs(gradient).max())


@pytest.mark.parametrize("path", recorded("rectangular"), ids=lambda p: p.stem)
def test_parity_with_pyautolens(path):
    record_parity(path)
