"""A served model spec with the power-law mass, its own priors and fixed parameters, over a real
server: `/v1/models` publishes them, the client's `prior_transform` uses them, and the service
evaluates the same numbers as `build_model` with the same arguments in process."""

from __future__ import annotations

import dataclasses

import httpx
import jax
import numpy as np
import pytest

from client import Client
from likelihood import ModelSettings, ParameterError, build_model, default_truth, load_imaging
from likelihood.priors import Gaussian, Uniform
from service.app import create_app
from service.models import load_models
from service.settings import ModelSpec
from tests.client.conftest import MASK_RADIUS, MODEL_SETTINGS, TOKEN, running_server, settings_for

PRIORS = {
    "lens.mass.einstein_radius": {"type": "Uniform", "lower": 1.0, "upper": 2.0},
    "lens.mass.slope": {"type": "TruncatedGaussian", "mean": 2.0, "sigma": 0.1, "lower": 1.5,
                        "upper": 3.0},
}
FIXED = {"lens.shear.gamma_1": 0.03, "source.bulge.centre_0": 0.05}


def spec(dataset_path, **overrides) -> ModelSpec:
    return ModelSpec(**{**dict(name="pl", kind="mge", dataset=dataset_path, mask_radius=MASK_RADIUS,
                               settings=MODEL_SETTINGS, mass="power_law", priors=PRIORS,
                               fixed=FIXED), **overrides})


@pytest.fixture(scope="module")
def power_law_server(dataset_path):
    settings = settings_for(dataset_path, models=[spec(dataset_path)], buckets=(1, 2),
                            gradient=False)
    with running_server(create_app(settings, load_models(settings.models))) as url:
        yield url


@pytest.mark.timeout(1200)
def test_the_spec_is_published_and_served(power_law_server, dataset_path):
    with httpx.Client(base_url=power_law_server,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        info = http.get("/v1/models/pl").json()
    names = info["parameter_names"]
    assert names[names.index("lens.mass.einstein_radius") + 1] == "lens.mass.slope"
    assert not set(FIXED) & set(names) and len(names) == 16 - len(FIXED)
    assert info["fixed"] == FIXED and info["settings"]["mass"] == "power_law"
    assert info["priors"]["lens.mass.einstein_radius"] == PRIORS["lens.mass.einstein_radius"]
    assert info["priors"]["lens.mass.slope"] == PRIORS["lens.mass.slope"]

    with Client(power_law_server, "pl", token=TOKEN) as client:
        model = client.model
        assert model.fixed == FIXED
        median = model.prior_transform(np.full(model.n_params, 0.5))
        assert median[model.index("lens.mass.einstein_radius")] == pytest.approx(1.5)
        assert median[model.index("lens.mass.slope")] == pytest.approx(2.0)
        truth = default_truth()
        theta = np.array([truth.get(name, 2.2) for name in model.parameter_names])
        served = client.log_evidence(theta[None])[0]

    dataset = dataclasses.replace(load_imaging(dataset_path), mask_radius=MASK_RADIUS)
    in_process = build_model(
        dataset, "mge", ModelSettings(**MODEL_SETTINGS, mass="power_law"),
        priors={"lens.mass.einstein_radius": Uniform(1.0, 2.0),
                "lens.mass.slope": Gaussian(2.0, 0.1, 1.5, 3.0)}, fixed=FIXED)
    np.testing.assert_allclose(served, jax.jit(in_process.log_evidence)(theta), rtol=1e-10)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"fixed": {"lens.mass.slop": 2.0}}, "model pl: a fixed value given for lens.mass.slop"),
    ({"priors": {"lens.mass.slope": {"type": "Uniform", "lower": 1.0, "upper": 3.0}}},
     "model pl: the prior .* of lens.mass.slope reaches outside its domain"),
    ({"priors": {"lens.mass.slope": {"type": "Beta"}}},
     "model pl: the prior of lens.mass.slope: unknown prior type 'Beta'"),
    ({"mass": "isothermal", "fixed": {"lens.mass.slope": 2.0}}, "lens.mass.slope, not a parameter"),
])
def test_a_bad_spec_fails_naming_the_parameter(dataset_path, overrides, message):
    with pytest.raises(ParameterError, match=message):
        load_models([spec(dataset_path, **overrides)])


def test_mass_and_settings_mass_must_agree(dataset_path):
    with pytest.raises(ValueError, match="disagree"):
        spec(dataset_path, settings={**MODEL_SETTINGS, "mass": "isothermal"})
