"""The mesh's linear system: mapping rows, their blurred and weighted images, D and F."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from likelihood import default_dataset
from likelihood.convolution import convolver
from likelihood.curvature import mapping_rows, mesh_and_light_system, weighted_mapping_rows
from likelihood.grids import masked_grids
from likelihood.mesh.rectangular import Mapping


def random_mapping(n, pixels, nnz, seed=0):
    rng = np.random.default_rng(seed)
    indices = np.stack([rng.choice(pixels, nnz, replace=False) for _ in range(n)])
    weights = rng.dirichlet(np.ones(nnz), size=n)
    return Mapping(jnp.asarray(indices, dtype=jnp.int32), jnp.asarray(weights))


def small_grids():
    dataset = dataclasses.replace(default_dataset(), mask_radius=0.6)
    return dataset, masked_grids(dataset)


def test_weighted_mapping_rows_are_the_masked_psf_convolution_over_the_noise():
    dataset, grids = small_grids()
    operator = convolver(grids.mask, grids.blurring, dataset.psf)
    for nnz in (3, 4):  # Delaunay and rectangular
        mapping = random_mapping(len(grids.grid), 30, nnz)
        ours = np.asarray(weighted_mapping_rows(mapping, 30, operator, 1.0 / grids.noise))
        dense = np.asarray(mapping_rows(mapping, 30))
        expected = np.empty_like(dense)
        for pixel in range(30):
            image = np.zeros(dataset.shape)
            image[grids.mask] = dense[pixel]
            blurred = scipy.signal.convolve(image, dataset.psf, mode="same")[grids.mask]
            expected[pixel] = blurred / grids.noise
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_mesh_and_light_system_equals_dense_normal_equations():
    dataset, grids = small_grids()
    operator = convolver(grids.mask, grids.blurring, dataset.psf)
    mapping = random_mapping(len(grids.grid), 30, 4, seed=1)
    light = jnp.asarray(np.random.default_rng(2).normal(size=(5, len(grids.grid))))
    rows, data_vector, curvature = jax.jit(
        mesh_and_light_system, static_argnums=(1, 3))(mapping, 30, light, operator, grids.data,
                                                      grids.noise)
    mesh = np.asarray(weighted_mapping_rows(mapping, 30, operator, 1.0 / grids.noise))
    A = np.concatenate([mesh, np.asarray(light)])
    np.testing.assert_allclose(np.asarray(rows), A, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(data_vector), A @ (grids.data / grids.noise),
                               rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(np.asarray(curvature), A @ A.T, rtol=1e-12, atol=1e-10)
