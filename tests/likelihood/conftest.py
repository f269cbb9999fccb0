"""Small, fast datasets and models shared by the likelihood tests."""

import dataclasses
from functools import cached_property

import jax
import numpy as np
import pytest

from likelihood import KINDS, LensModel, ModelSettings, build_model, default_dataset, default_truth

SMALL_SETTINGS = ModelSettings(lens_gaussians=20, source_gaussians=10, mesh_shape=(12, 12),
                               delaunay_overlay=(15, 15))

# Every kind at SMALL_SETTINGS, and the settings that change a kind's numerics: the rectangular
# mesh's smooth kernel-density transform (the default rank transform is piecewise constant in
# the lens mass).
VARIANTS: dict[str, tuple[str, ModelSettings]] = {kind: (kind, SMALL_SETTINGS) for kind in KINDS} | {
    "rectangular-kernel": ("rectangular",
                           dataclasses.replace(SMALL_SETTINGS, rectangular_transform="kernel")),
}
# The variant of each kind whose log-evidence is smooth in every parameter (a kind not named
# here must be smooth at SMALL_SETTINGS; Delaunay's is smooth wherever the triangulation holds).
SMOOTH_VARIANTS = {kind: {"rectangular": "rectangular-kernel"}.get(kind, kind) for kind in KINDS}
# Points per batch in every vmap test: one compilation per variant serves them all.
BATCH = 4
# Two programs for one gradient (eager and jit, a vmap and a loop) round differently, and the
# pixelized kinds amplify rounding in their gradient in the mass: a relative change of 1e-14 in
# the point moves it by up to 1e-10 of its largest component at `SmallModel.points` (MGE 1e-12).
# Gradients are compared to 1e-9 of the largest component (values to 1e-12).
GRADIENT_TOLERANCE = 1e-9


@pytest.fixture(scope="session")
def small_dataset():
    """The embedded dataset inside a 1.6" mask (~3,200 pixels) for quick tests."""
    return dataclasses.replace(default_dataset(), mask_radius=1.6)


def truth_vector(model) -> np.ndarray:
    truth = default_truth()
    return np.array([truth.get(n, model.reference_parameters[i])
                     for i, n in enumerate(model.parameter_names)])


def prior_draws(model, n: int, seed: int = 0) -> np.ndarray:
    """(n, P) random points from the model's priors (deterministic)."""
    u = np.random.default_rng(seed).uniform(0.02, 0.98, size=(n, len(model.priors)))
    return np.stack([prior.from_unit(u[:, i]) for i, prior in enumerate(model.priors)], axis=1)


@dataclasses.dataclass(eq=False)
class SmallModel:
    """A small model and its log-evidence under jit, each compiled on first use and shared by
    every test of the session: `value` (P,) -> (), `value_and_grad` (P,) -> ((), (P,)), their
    vmaps over (B, P) points (`batched_value_and_grad` is what the service's engine compiles) and
    `inversion` (P,) -> Inversion."""

    name: str
    model: LensModel

    @cached_property
    def value(self):
        return jax.jit(self.model.log_evidence)

    @cached_property
    def value_and_grad(self):
        return jax.jit(jax.value_and_grad(self.model.log_evidence))

    @cached_property
    def batched_value(self):
        return jax.jit(jax.vmap(self.model.log_evidence))

    @cached_property
    def batched_value_and_grad(self):
        return jax.jit(jax.vmap(jax.value_and_grad(self.model.log_evidence)))

    @cached_property
    def inversion(self):
        return jax.jit(self.model.inversion)

    @cached_property
    def points(self) -> np.ndarray:
        """(BATCH, P) points near the truth (moved off its symmetries, seeded): where a sampler
        spends its time, and where finite differences of a pixelized kind meet no re-wiring."""
        truth = truth_vector(self.model)
        return np.stack([truth + np.random.default_rng(seed).normal(0.0, 0.02, truth.shape)
                         for seed in range(BATCH)])


@pytest.fixture(scope="session")
def small_models(small_dataset):
    """variant name (a key of VARIANTS) -> its `SmallModel`, each built once per session."""
    built: dict[str, SmallModel] = {}

    def small_model(variant: str) -> SmallModel:
        if variant not in built:
            kind, settings = VARIANTS[variant]
            built[variant] = SmallModel(variant, build_model(small_dataset, kind, settings))
        return built[variant]

    return small_model


@pytest.fixture(scope="session")
def small_mge_model(small_models):
    return small_models("mge").model


@pytest.fixture(params=list(VARIANTS))
def variant(request, small_models) -> SmallModel:
    """Each variant in turn (every kind, and the settings that change a kind's numerics)."""
    return small_models(request.param)


@pytest.fixture(params=[SMOOTH_VARIANTS[kind] for kind in KINDS])
def smooth_variant(request, small_models) -> SmallModel:
    """Each kind in turn, at settings where its log-evidence is smooth in every parameter."""
    return small_models(request.param)
