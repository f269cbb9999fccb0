"""Kind `mge`: parameter names, the fit at the truth, invalid points and the fit's pieces."""

import numpy as np
import pytest

from likelihood import UnknownKindError, build_model
from tests.likelihood.conftest import truth_vector


def test_parameter_names_follow_pyautolens_paths(small_mge_model):
    names = small_mge_model.parameter_names
    assert names[:2] == ("lens.bulge.centre_0", "lens.bulge.centre_1")
    assert names[8] == "lens.mass.einstein_radius"
    assert names[-1] == "source.bulge.ell_comps_1" and len(names) == 15


def test_unknown_kind_is_a_clear_error(small_dataset):
    with pytest.raises(UnknownKindError, match="unknown model kind 'sersic'"):
        build_model(small_dataset, "sersic")


def test_truth_fits_well(small_models, small_mge_model):
    inversion = small_models("mge").inversion(truth_vector(small_mge_model))
    pixels = len(small_mge_model.grids.data)
    assert inversion.chi_squared < 1.5 * pixels
    assert bool(inversion.solver.converged)
    assert np.all(np.asarray(inversion.amplitudes) >= 0)


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
