"""Small, fast datasets and models shared by the likelihood tests."""

import dataclasses

import numpy as np
import pytest

from likelihood import ModelSettings, build_model, default_dataset, default_truth

SMALL_SETTINGS = ModelSettings(lens_gaussians=20, source_gaussians=10)


@pytest.fixture(scope="session")
def small_dataset():
    """The embedded dataset inside a 1.6" mask (~3,200 pixels) for quick tests."""
    return dataclasses.replace(default_dataset(), mask_radius=1.6)


@pytest.fixture(scope="session")
def small_mge_model(small_dataset):
    return build_model(small_dataset, "mge", SMALL_SETTINGS)


def truth_vector(model) -> np.ndarray:
    truth = default_truth()
    return np.array([truth.get(n, model.reference_parameters[i])
                     for i, n in enumerate(model.parameter_names)])


def prior_draws(model, n: int, seed: int = 0) -> np.ndarray:
    """(n, P) random points from the model's priors (deterministic)."""
    u = np.random.default_rng(seed).uniform(0.02, 0.98, size=(n, len(model.priors)))
    return np.stack([prior.from_unit(u[:, i]) for i, prior in enumerate(model.priors)], axis=1)
