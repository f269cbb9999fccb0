"""The mesh's linear system: blurred mapping matrix, symmetric Gram product, data vector."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from likelihood import default_dataset
from likelihood.convolution import convolver
from likelihood.curvature import (
    blurred_mapping_matrix,
    linear_system,
    mapping_matrix,
    symmetric_gram,
)
from likelihood.grids import masked_grids
from likelihood.inversion import data_vector_and_curvature
from likelihood.mesh.rectangular import Mapping


def random_mapping(n, pixels, nnz, seed=0):
    rng = np.random.default_rng(seed)
    indices = np.stack([rng.choice(pixels, nnz, replace=False) for _ in range(n)])
    weights = rng.dirichlet(np.ones(nnz), size=n)
    return Mapping(jnp.asarray(indices, dtype=jnp.int32), jnp.asarray(weights))


def test_symmetric_gram_equals_dense_product():
    matrix = np.random.default_rng(0).normal(size=(40, 600))
    np.testing.assert_allclose(np.asarray(symmetric_gram(jnp.asarray(matrix))), matrix.T @ matrix,
                               rtol=1e-12, atol=1e-12)


def test_blurred_mapping_matrix_is_the_masked_psf_convolution():
    dataset = dataclasses.replace(default_dataset(), mask_radius=0.6)
    grids = masked_grids(dataset)
    for nnz in (3, 4):  # Delaunay and rectangular
        mapping = random_mapping(len(grids.grid), 30, nnz)
        operator = convolver(grids.mask, grids.blurring, dataset.psf)
        ours = np.asarray(blurred_mapping_matrix(mapping, 30, operator, chunk=7))
        dense = np.asarray(mapping_matrix(mapping, 30))
        expected = np.empty_like(dense)
        for column in range(30):
            image = np.zeros(dataset.shape)
            image[grids.mask] = dense[:, column]
            expected[:, column] = scipy.signal.convolve(image, dataset.psf, mode="same")[grids.mask]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-14)


def test_linear_system_equals_dense_normal_equations():
    rng = np.random.default_rng(2)
    blurred = jnp.asarray(rng.normal(size=(300, 280)))
    data, noise = jnp.asarray(rng.normal(size=300)), jnp.asarray(rng.uniform(0.5, 2.0, 300))
    ours = jax.jit(linear_system)(blurred, data, noise)
    theirs = data_vector_and_curvature(blurred, data, noise)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-10)
