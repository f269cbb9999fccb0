"""Kind `mge`: transformations (jit, vmap, grad) and parity with PyAutoLens."""

import jax
import numpy as np
import pytest

from likelihood import UnknownKindError, build_model
from tests.likelihood.conftest import prior_draws, truth_vector
from tests.likelihood.parity import record_parity, recorded


def test_parameter_names_follow_pyautolens_paths(small_mge_model):
    names = small_mge_model.parameter_names
    assert names[:2] == ("lens.bulge.centre_0", "lens.bulge.centre_1")
    assert names[8] == "lens.mass.einstein_radius"
    assert names[-1] == "source.bulge.ell_comps_1" and len(names) == 15


def test_unknown_kind_is_a_clear_error(small_dataset):
    with pytest.raises(UnknownKindError, match="unknown model kind 'sersic'"):
        build_model(small_dataset, "sersic")


def test_truth_fits_well(small_mge_model):
    inversion = jax.jit(small_mge_model.inversion)(truth_vector(small_mge_model))
    pixels = len(small_mge_model.grids.data)
    assert inversion.chi_squared < 1.5 * pixels
    assert bool(inversion.solver.converged)
    assert np.all(np.asarray(inversion.amplitudes) >= 0)


def test_jit_equals_eager(small_mge_model):
    theta = truth_vector(small_mge_model)
    eager = small_mge_model.log_evidence(theta)
    np.testing.assert_allclose(jax.jit(small_mge_model.log_evidence)(theta), eager, rtol=1e-12)


def test_vmap_equals_loop(small_mge_model):
    thetas = np.concatenate([truth_vector(small_mge_model)[None], prior_draws(small_mge_model, 4)])
    single = jax.jit(small_mge_model.log_evidence)
    batched = jax.jit(jax.vmap(small_mge_model.log_evidence))(thetas)
    np.testing.assert_allclose(batched, [single(t) for t in thetas], rtol=1e-11)


def test_gradients_finite_at_prior_draws(small_mge_model):
    grad = jax.jit(jax.vmap(jax.grad(small_mge_model.log_evidence)))
    gradients = np.asarray(grad(prior_draws(small_mge_model, 50, seed=3)))
    assert np.all(np.isfinite(gradients))


def test_gradient_matches_central_differences(small_mge_model):
    theta = truth_vector(small_mge_model) + 0.01
    f = jax.jit(small_mge_model.log_evidence)
    gradient = np.asarray(jax.jit(jax.grad(small_mge_model.log_evidence))(theta))
    for i in range(len(theta)):
        h = 1e-6
        step = np.zeros_like(theta)
        step[i] = h
        numeric = (f(theta + step) - f(theta - step)) / (2 * h)
        np.testing.assert_allclose(gradient[i], numeric, rtol=1e-4, atol=1e-3,
                                   err_msg=small_mge_model.parameter_names[i])


def test_invalid_reason_names_the_problem(small_mge_model):
    theta = truth_vector(small_mge_model)
    assert small_mge_model.invalid_reason(theta) is None
    bad = theta.copy()
    bad[8] = -1.0
    assert "einstein_radius" in small_mge_model.invalid_reason(bad)
    bad = theta.copy()
    bad[3] = np.nan
    assert "lens.bulge.ell_comps_1" in small_mge_model.invalid_reason(bad)
    assert "expected 15" in small_mge_model.invalid_reason(theta[:3])


def test_fit_pieces(small_mge_model):
    fit = small_mge_model.fit(truth_vector(small_mge_model))
    assert fit["model_image"].shape == small_mge_model.dataset.shape
    assert fit["terms"]["log_evidence"] == pytest.approx(
        -0.5 * (fit["terms"]["chi_squared"] + fit["terms"]["noise_normalization"]))


@pytest.mark.parametrize("path", recorded("mge"), ids=lambda p: p.stem)
def test_parity_with_pyautolens(path):
    record_parity(path)
