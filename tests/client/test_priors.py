"""`ModelDescription.prior_transform` maps the unit cube onto the priors the service publishes."""

import math

import numpy as np
import pytest

from client import Client
from client.priors import Gaussian, LogUniform, Uniform, normal_quantile, prior_from_dict
from likelihood import priors as service_priors
from tests.client.conftest import TOKEN

U = np.concatenate([[0.0, 1e-12, 1e-6, 0.5, 1 - 1e-6, 1.0],
                    np.random.default_rng(0).uniform(size=200)])


@pytest.mark.parametrize("prior", [
    service_priors.Uniform(-0.3, 0.3),
    service_priors.LogUniform(1e-6, 1e6),
    service_priors.Gaussian(0.0, 0.1),
    service_priors.Gaussian(0.0, 0.3, -1.0, 1.0),
    service_priors.Gaussian(1.0, 0.5, 0.0, math.inf),
])
def test_each_published_prior_matches_the_service_one(prior):
    ours = prior_from_dict(prior.to_dict())
    theirs = prior.from_unit(U)
    np.testing.assert_allclose(ours.from_unit(U), theirs, rtol=1e-12, atol=1e-14)


def test_json_null_bounds_mean_unbounded():
    prior = prior_from_dict({"type": "TruncatedGaussian", "mean": 0.0, "sigma": 1.0,
                             "lower": 0.0, "upper": None})
    assert prior == Gaussian(0.0, 1.0, 0.0, math.inf)


def test_known_types():
    assert prior_from_dict({"type": "Uniform", "lower": 0, "upper": 8}) == Uniform(0.0, 8.0)
    assert prior_from_dict({"type": "LogUniform", "lower": 1, "upper": 2}) == LogUniform(1.0, 2.0)
    with pytest.raises(NotImplementedError, match="Beta"):
        prior_from_dict({"type": "Beta", "a": 1}).from_unit(U)


def test_normal_quantile_edges():
    assert normal_quantile(np.array([0.0, 0.5, 1.0])).tolist() == [-math.inf, 0.0, math.inf]


def test_served_prior_transform_equals_the_likelihood_priors(served):
    with Client(served.url, "mge", token=TOKEN) as client:
        model = client.model
        assert model.parameter_names == served.model.parameter_names
        cube = np.random.default_rng(1).uniform(size=(500, model.n_params))
        mapped = model.prior_transform(cube)
        expected = np.stack([p.from_unit(cube[:, i]) for i, p in enumerate(served.model.priors)], -1)
        np.testing.assert_allclose(mapped, expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(model.prior_transform(cube[0]), expected[0], rtol=1e-12)
        assert model.dataset["mask_radius"] == served.model.dataset.mask_radius


def test_prior_transform_rejects_bad_cubes(served):
    with Client(served.url, "mge", token=TOKEN) as client:
        with pytest.raises(ValueError, match="P = 15"):
            client.model.prior_transform(np.full((3, 4), 0.5))
        with pytest.raises(ValueError, match="outside"):
            client.model.prior_transform(np.full(15, 1.5))
