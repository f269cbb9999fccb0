"""`build_model(..., priors=, fixed=)`: a fixed parameter leaves the vector and reaches the
components by value; priors replace the defaults; mistakes are errors naming the parameter."""

import dataclasses

import jax
import numpy as np
import pytest

from likelihood import ParameterError, build_model
from likelihood.priors import Gaussian, LogUniform, Uniform, prior_from_dict
from tests.likelihood.conftest import SMALL_SETTINGS, truth_vector

FIXED = {"lens.shear.gamma_1": 0.03, "lens.mass.centre_0": 0.001}


def test_a_fixed_parameter_leaves_the_vector_and_keeps_its_value(small_dataset, small_mge_model):
    model = build_model(small_dataset, "mge", SMALL_SETTINGS, fixed=FIXED)
    full_names = small_mge_model.parameter_names
    assert model.parameter_names == tuple(n for n in full_names if n not in FIXED)
    assert len(model.priors) == len(full_names) - 2
    assert model.describe()["fixed"] == FIXED
    full = truth_vector(small_mge_model)
    for name, value in FIXED.items():
        full[full_names.index(name)] = value
    free = np.array([v for n, v in zip(full_names, full, strict=True) if n not in FIXED])
    np.testing.assert_allclose(jax.jit(model.log_evidence)(free),
                               jax.jit(small_mge_model.log_evidence)(full), rtol=1e-12)
    assert model.invalid_reason(free) is None
    assert "expected 13" in model.invalid_reason(full)


def test_priors_replace_the_defaults(small_dataset):
    priors = {"lens.mass.einstein_radius": Uniform(1.0, 2.0),
              "source.bulge.ell_comps_0": Gaussian(0.0, 0.1, -1.0, 1.0)}
    model = build_model(small_dataset, "mge", SMALL_SETTINGS, priors=priors)
    described = model.describe()["priors"]
    assert described["lens.mass.einstein_radius"] == {"type": "Uniform", "lower": 1.0, "upper": 2.0}
    assert described["source.bulge.ell_comps_0"]["sigma"] == 0.1
    assert model.reference_parameters[model.parameter_names.index("lens.mass.einstein_radius")] == 1.5


def test_the_slope_of_a_power_law_can_be_fixed(small_dataset):
    settings = dataclasses.replace(SMALL_SETTINGS, mass="power_law")
    model = build_model(small_dataset, "mge", settings, fixed={"lens.mass.slope": 2.1})
    assert "lens.mass.slope" not in model.parameter_names and len(model.parameter_names) == 15


@pytest.mark.parametrize(("priors", "fixed", "message"), [
    ({}, {"lens.mass.slope": 2.0}, "lens.mass.slope, not a parameter of this model"),
    ({"lens.shear.gamma": Uniform(0, 1)}, {}, "lens.shear.gamma, not a parameter"),
    ({"lens.mass.einstein_radius": Uniform(-1.0, 2.0)}, {},
     "lens.mass.einstein_radius reaches outside its domain"),
    ({"lens.mass.ell_comps_0": Gaussian(0.0, 0.3)}, {}, "lens.mass.ell_comps_0 reaches outside"),
    ({"lens.shear.gamma_1": Uniform(0, 0.1)}, {"lens.shear.gamma_1": 0.0}, "both a prior and"),
    ({}, {"lens.mass.einstein_radius": -1.0}, "einstein_radius must be >= 0"),
    ({}, {"lens.mass.centre_0": float("nan")}, "lens.mass.centre_0: not finite"),
    ({"lens.mass.centre_0": "Uniform(0, 1)"}, {}, "the prior of lens.mass.centre_0 must be"),
])
def test_mistakes_name_the_parameter(small_dataset, priors, fixed, message):
    with pytest.raises(ParameterError, match=message):
        build_model(small_dataset, "mge", SMALL_SETTINGS, priors=priors, fixed=fixed)


def test_priors_read_back_from_their_dicts():
    for prior in (Uniform(-1.0, 2.0), LogUniform(1e-3, 10.0), Gaussian(0.0, 0.1),
                  Gaussian(2.0, 0.2, 1.5, 3.0)):
        assert prior_from_dict(prior.to_dict()) == prior
    with pytest.raises(ValueError, match="unknown prior type 'Beta'"):
        prior_from_dict({"type": "Beta", "a": 1})
    with pytest.raises(ValueError, match="LogUniform needs 0 < lower"):
        prior_from_dict({"type": "LogUniform", "lower": 0.0, "upper": 1.0})
    with pytest.raises(ValueError, match="a Uniform prior takes lower, upper"):
        prior_from_dict({"type": "Uniform", "low": 0.0, "upper": 1.0})
