"""The staged fit's pure functions: prior passing between stages and posterior summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client import pipeline
from client.priors import Gaussian, LogUniform, Uniform


def marginal(median, p16, p84):
    return {"median": median, "p16": p16, "p84": p84}


def test_a_passed_prior_is_the_median_plus_minus_the_widened_half_width():
    prior = pipeline.passed_prior("lens.mass.einstein_radius", marginal(1.6, 1.5, 1.7),
                                  Uniform(0.0, 8.0), widening=3.0)
    assert prior == Uniform(pytest.approx(1.3), pytest.approx(1.9))


def test_a_narrow_posterior_is_widened_to_the_floor():
    prior = pipeline.passed_prior("lens.mass.einstein_radius", marginal(1.49, 1.488, 1.492),
                                  Uniform(0.0, 8.0), widening=2.0)
    floor = pipeline.HALF_WIDTH_FLOORS["einstein_radius"]
    assert prior == Uniform(pytest.approx(1.49 - 2 * floor), pytest.approx(1.49 + 2 * floor))


def test_a_passed_prior_is_clipped_to_the_published_support():
    prior = pipeline.passed_prior("lens.bulge.ell_comps_0", marginal(0.9, 0.8, 0.95),
                                  Gaussian(0.0, 0.3, -1.0, 1.0))
    assert prior.upper == 1.0 and prior.lower == pytest.approx(0.9 - 5 * 0.075)
    unbounded = pipeline.passed_prior("lens.mass.centre_0", marginal(0.0, -0.2, 0.2),
                                      Gaussian(0.0, 0.1))
    assert unbounded == Uniform(pytest.approx(-1.0), pytest.approx(1.0))
    assert pipeline.passed_prior("lens.mass.einstein_radius", marginal(0.05, 0.0, 0.1),
                                 Uniform(0.0, 8.0)).lower == 0.0


def test_a_log_uniform_prior_is_passed_in_log10():
    prior = pipeline.passed_prior("source.pixelization.coefficient", marginal(10.0, 1.0, 100.0),
                                  LogUniform(1e-6, 1e6), widening=2.0)
    assert isinstance(prior, LogUniform)
    assert math.log10(prior.lower) == pytest.approx(-1.0)
    assert math.log10(prior.upper) == pytest.approx(3.0)
    clipped = pipeline.passed_prior("source.pixelization.coefficient", marginal(1e5, 1e4, 1e6),
                                    LogUniform(1e-6, 1e6))
    assert clipped.upper == pytest.approx(1e6)


def test_a_median_outside_the_support_is_an_error():
    with pytest.raises(ValueError, match="outside the support"):
        pipeline.passed_prior("lens.shear.gamma_1", marginal(0.5, 0.49, 0.51), Uniform(-0.3, 0.3),
                              widening=0.001)


def test_stage_priors_pass_what_the_previous_stage_fitted_and_keep_the_rest():
    names = ("lens.mass.einstein_radius", "lens.mass.slope", "source.pixelization.coefficient")
    published = (Uniform(0.0, 8.0), Uniform(1.5, 3.0), LogUniform(1e-6, 1e6))
    previous = {"lens.mass.einstein_radius": marginal(1.6, 1.59, 1.61),
                "source.bulge.centre_0": marginal(0.0, -0.01, 0.01)}
    priors = pipeline.stage_priors(names, published, previous)
    assert priors[0] == Uniform(pytest.approx(1.35), pytest.approx(1.85))
    assert priors[1:] == published[1:]


def test_the_first_stage_has_broad_priors_with_a_wide_source_centre():
    names = ("lens.mass.einstein_radius", "source.bulge.centre_0", "source.bulge.centre_1")
    published = (Uniform(0.0, 8.0), Uniform(-0.1, 0.1), Uniform(-0.1, 0.1))
    priors = pipeline.stage_priors(names, published, None)
    bound = pipeline.SOURCE_CENTRE_BOUND
    assert priors == (published[0], Uniform(-bound, bound), Uniform(-bound, bound))


def test_stages_chain_mge_pixelized_and_power_law():
    first, second, third = pipeline.stages("rectangular")
    assert (first.kind, first.mass, first.previous) == ("mge", "isothermal", None)
    assert (second.kind, second.mass, second.previous) == ("rectangular", "isothermal", first.name)
    assert (third.kind, third.mass, third.previous) == ("rectangular", "power_law", second.name)
    with pytest.raises(ValueError):
        pipeline.stages("voronoi")


def test_summaries_of_a_weighted_gaussian_sample():
    rng = np.random.default_rng(0)
    points = rng.uniform(-5, 5, size=(200_000, 2))
    log_weights = -0.5 * ((points[:, 0] - 1.0) / 0.5) ** 2 - 0.5 * (points[:, 1] / 1.0) ** 2
    log_likelihood = log_weights.copy()
    summary = pipeline.posterior_summary(("a", "b"), points, log_weights, log_likelihood, -3.0)
    a = summary["parameters"]["a"]
    assert a["median"] == pytest.approx(1.0, abs=0.01)
    assert a["p16"] == pytest.approx(0.5, abs=0.01) and a["p84"] == pytest.approx(1.5, abs=0.01)
    assert a["std"] == pytest.approx(0.5, abs=0.01)
    assert summary["parameters"]["b"]["std"] == pytest.approx(1.0, rel=0.02)
    assert summary["best_fit"]["a"] == pytest.approx(1.0, abs=0.05)
    assert summary["log_z"] == -3.0 and summary["samples"] == len(points)
    # Weights over a tenth of a uniform box: N_eff about N/10 ... N/2, log Z error about its 1/sqrt.
    assert len(points) / 20 < summary["effective_sample_size"] < len(points) / 2
    assert summary["log_z_error"] == pytest.approx(
        math.sqrt(1 / summary["effective_sample_size"] - 1 / len(points)))


def test_weighted_quantiles_of_equal_weights_are_the_plain_ones():
    values = np.arange(101.0)
    assert pipeline.weighted_quantiles(values, np.ones(101), (0.16, 0.5, 0.84)) == \
        pytest.approx(np.quantile(values, (0.16, 0.5, 0.84)), abs=0.51)


def test_priors_are_described_in_the_service_vocabulary():
    assert pipeline.prior_to_dict(Uniform(0.0, 1.0)) == {"type": "Uniform", "lower": 0.0,
                                                          "upper": 1.0}
    assert pipeline.prior_to_dict(Gaussian(0.0, 0.1))["type"] == "Gaussian"
    assert pipeline.prior_to_dict(Gaussian(0.0, 0.3, -1, 1))["type"] == "TruncatedGaussian"


def test_mass_parameters_are_the_lens_mass_and_shear():
    names = ("lens.bulge.centre_0", "lens.mass.einstein_radius", "lens.mass.slope",
             "lens.shear.gamma_1", "source.pixelization.coefficient")
    assert pipeline.mass_parameters(names) == ["lens.mass.einstein_radius", "lens.mass.slope",
                                               "lens.shear.gamma_1"]
