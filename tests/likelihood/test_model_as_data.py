"""The model as data: one compiled program evaluates any dataset of the same shapes, given its core
(`likelihood.core`) as an argument, and matches each dataset's own model."""

import dataclasses

import jax
import numpy as np
import pytest

from likelihood import KINDS, build_model, core
from tests.likelihood.conftest import SMALL_SETTINGS, prior_draws


def another_lens(dataset, seed: int = 0):
    """The same shapes with other values everywhere a dataset has them: data, noise and PSF."""
    rng = np.random.default_rng(seed)
    psf = dataset.psf * rng.uniform(0.8, 1.2, dataset.psf.shape)
    return dataclasses.replace(
        dataset, data=1.3 * dataset.data + rng.normal(0.0, 0.01, dataset.data.shape),
        noise_map=dataset.noise_map * rng.uniform(0.9, 1.5, dataset.data.shape),
        psf=psf / psf.sum(), name="another",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_one_executable_evaluates_two_datasets(small_dataset, kind):
    first = build_model(small_dataset, kind, SMALL_SETTINGS)
    second = build_model(another_lens(small_dataset), kind, SMALL_SETTINGS)
    theta = prior_draws(first, 1, seed=3)[0]
    compiled = jax.jit(core.log_evidence).lower(first.core, theta).compile()
    for model in (first, second):
        own = float(jax.jit(model.log_evidence)(theta))
        assert np.isfinite(own)
        np.testing.assert_allclose(float(compiled(model.core, theta)), own, rtol=1e-12, atol=0)
    # The datasets differ enough that sharing would show: their evidences are far apart.
    assert abs(float(compiled(first.core, theta)) - float(compiled(second.core, theta))) > 1.0


def test_the_core_is_a_pytree_of_the_dataset_arrays(small_mge_model):
    leaves = jax.tree_util.tree_leaves(small_mge_model.core)
    grids = small_mge_model.grids
    assert any(leaf is grids.data for leaf in leaves)
    assert any(leaf is grids.noise for leaf in leaves)
    assert any(leaf is small_mge_model.convolver.psf_fft for leaf in leaves)
    # Integer and boolean geometry is static: it fixes the program.
    assert not any(leaf is grids.mask for leaf in leaves)
    assert all(np.issubdtype(np.asarray(leaf).dtype, np.inexact) for leaf in leaves)
