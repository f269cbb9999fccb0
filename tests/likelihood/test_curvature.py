"""The mesh's linear system: mapping rows, their blurred and weighted images, D and F."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from likelihood import default_dataset
from likelihood.convolution import convolver
from likelihood.curvature import (
    dense_mesh_system,
    mapping_rows,
    mesh_operator,
    sparse_mesh_curvature,
    sparse_mesh_system,
    weighted_mapping_rows,
)
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


def small_system(nnz, seed):
    dataset, grids = small_grids()
    operator = mesh_operator(grids.mask, grids.blurring, dataset.psf)
    mapping = random_mapping(len(grids.grid), 30, nnz, seed=seed)
    light = jnp.asarray(np.random.default_rng(seed + 1).normal(size=(5, len(grids.grid))))
    return operator, mapping, light, grids


def solved(build_system, mapping, light, operator, grids, amplitudes):
    """(D, F, B s) of a mesh system, jitted."""

    def terms(mapping, light, amplitudes):
        system = build_system(mapping, 30, light, operator, grids.data, grids.noise)
        return system.data_vector, system.curvature, system.image(amplitudes)

    return [np.asarray(term) for term in jax.jit(terms)(mapping, light, amplitudes)]


def test_dense_mesh_system_equals_the_normal_equations_of_its_rows():
    operator, mapping, light, grids = small_system(4, seed=1)
    amplitudes = np.random.default_rng(3).normal(size=35)
    data_vector, curvature, image = solved(dense_mesh_system, mapping, light, operator, grids,
                                           amplitudes)
    mesh = np.asarray(weighted_mapping_rows(mapping, 30, operator.blur, 1.0 / grids.noise))
    A = np.concatenate([mesh, np.asarray(light)])
    np.testing.assert_allclose(data_vector, A @ (grids.data / grids.noise), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(curvature, A @ A.T, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(image, (amplitudes @ A) * grids.noise, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nnz", [3, 4])  # Delaunay and rectangular
def test_sparse_mesh_system_equals_the_dense_one(nnz):
    operator, mapping, light, grids = small_system(nnz, seed=nnz)
    amplitudes = np.random.default_rng(5).normal(size=35)
    dense = solved(dense_mesh_system, mapping, light, operator, grids, amplitudes)
    sparse = solved(sparse_mesh_system, mapping, light, operator, grids, amplitudes)
    for ours, expected in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-12 * np.abs(expected).max())


def test_sparse_mesh_curvature_has_the_dense_derivative_and_batches_lane_by_lane():
    operator, mapping, _, grids = small_system(4, seed=7)
    cotangent = np.random.default_rng(8).normal(size=(30, 30))

    def loss(curvature):
        return lambda weights: jnp.sum(cotangent * curvature(weights))

    sparse = loss(lambda w: sparse_mesh_curvature(operator, 30, mapping.indices, w, grids.noise))
    dense = loss(lambda w: dense_mesh_system(Mapping(mapping.indices, w), 30,
                                             jnp.zeros((0, len(grids.grid))), operator,
                                             grids.data, grids.noise).curvature)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(sparse))(mapping.weights)),
                               np.asarray(jax.grad(dense)(mapping.weights)), rtol=1e-10,
                               atol=1e-10)
    batch = jnp.stack([mapping.weights, 2.0 * mapping.weights])
    batched = jax.jit(jax.vmap(lambda w: sparse_mesh_curvature(operator, 30, mapping.indices, w,
                                                               grids.noise)))(batch)
    np.testing.assert_allclose(np.asarray(batched[1]), 4.0 * np.asarray(batched[0]), rtol=1e-12)


def test_the_curvature_kernel_answers_a_broken_mapping_with_nan_not_a_wild_write():
    operator, mapping, _, grids = small_system(4, seed=9)
    indices, weights = np.asarray(mapping.indices), np.asarray(mapping.weights)
    inverse_variance = 1.0 / grids.noise**2
    for bad_indices, bad_weights in [
        (np.where(indices == 3, -2147483648, indices), weights),  # int cast of a NaN position
        (np.where(indices == 3, 30, indices), weights),
        (indices, np.where(indices == 3, np.nan, weights)),
    ]:
        curvature = operator.stencil.curvature(bad_indices, bad_weights, inverse_variance, 30)
        assert np.isnan(curvature).all()
    assert np.isfinite(operator.stencil.curvature(indices, weights, inverse_variance, 30)).all()
