"""The mesh's linear system: mapping rows, their blurred and weighted images, D and F, in both
formulations (chosen by `Execution`, not by the backend), and the sparse formulation's kernel."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from likelihood import default_dataset
from likelihood.convolution import convolver
from likelihood.curvature import (
    mapping_rows,
    mesh_and_light_system,
    mesh_operator,
    sparse_mesh_terms,
    weighted_mapping_rows,
)
from likelihood.execution import Execution, execution_for
from likelihood.grids import masked_grids
from likelihood.kernel import PixelStencil
from likelihood.kernel.tiles import blas_sizes, gram_upper
from likelihood.mesh.mesh import Mapping


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


def small_system(nnz, seed, formulation="sparse"):
    dataset, grids = small_grids()
    operator = mesh_operator(convolver(grids.mask, grids.blurring, dataset.psf), grids.mask,
                             dataset.psf, Execution(formulation))
    mapping = random_mapping(len(grids.grid), 30, nnz, seed=seed)
    light = jnp.asarray(np.random.default_rng(seed + 1).normal(size=(5, len(grids.grid))))
    return operator, mapping, light, grids


def solved(operator, mapping, light, grids, amplitudes):
    """(D, F, B s) of a mesh system in the operator's formulation, jitted."""

    def terms(mapping, light, amplitudes):
        system = mesh_and_light_system(mapping, 30, light, operator, grids.data, grids.noise)
        return system.data_vector, system.curvature, system.image(amplitudes)

    return [np.asarray(term) for term in jax.jit(terms)(mapping, light, amplitudes)]


def test_dense_mesh_system_equals_the_normal_equations_of_its_rows():
    operator, mapping, light, grids = small_system(4, seed=1, formulation="dense")
    amplitudes = np.random.default_rng(3).normal(size=35)
    data_vector, curvature, image = solved(operator, mapping, light, grids, amplitudes)
    mesh = np.asarray(weighted_mapping_rows(mapping, 30, operator.blur, 1.0 / grids.noise))
    A = np.concatenate([mesh, np.asarray(light)])
    np.testing.assert_allclose(data_vector, A @ (grids.data / grids.noise), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(curvature, A @ A.T, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(image, (amplitudes @ A) * grids.noise, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nnz", [3, 4])  # Delaunay and rectangular
def test_sparse_mesh_system_equals_the_dense_one(nnz):
    amplitudes = np.random.default_rng(5).normal(size=35)
    dense = solved(*small_system(nnz, seed=nnz, formulation="dense"), amplitudes)
    sparse = solved(*small_system(nnz, seed=nnz, formulation="sparse"), amplitudes)
    for ours, expected in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-12 * np.abs(expected).max())


def test_sparse_mesh_terms_have_the_dense_derivative_and_batch_lane_by_lane():
    operator, mapping, light, grids = small_system(4, seed=7)
    rng = np.random.default_rng(8)
    cotangents = (rng.normal(size=(30, 30)), rng.normal(size=(30, 5)))

    def loss(terms):
        return lambda weights, targets: sum(
            jnp.sum(c * t) for c, t in zip(cotangents, terms(weights, targets), strict=True))

    def dense_terms(weights, targets):
        rows = weighted_mapping_rows(Mapping(mapping.indices, weights), 30, operator.blur,
                                     1.0 / grids.noise)
        return rows @ rows.T, rows @ targets.T

    sparse = loss(lambda w, t: sparse_mesh_terms(operator, 30, mapping.indices, w, t, grids.noise))
    arguments = (mapping.weights, light)
    np.testing.assert_allclose(jax.jit(sparse)(*arguments), loss(dense_terms)(*arguments),
                               rtol=1e-11)
    gradient = jax.jit(jax.grad(sparse, argnums=(0, 1)))(*arguments)
    expected = jax.grad(loss(dense_terms), argnums=(0, 1))(*arguments)
    for ours, theirs in zip(gradient, expected, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-10, atol=1e-10)
    batch = jnp.stack([mapping.weights, 2.0 * mapping.weights])
    curvature, projections = jax.jit(jax.vmap(
        lambda w: sparse_mesh_terms(operator, 30, mapping.indices, w, light, grids.noise)))(batch)
    np.testing.assert_allclose(np.asarray(curvature[1]), 4.0 * np.asarray(curvature[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(projections[1]), 2.0 * np.asarray(projections[0]),
                               rtol=1e-12)


def test_the_curvature_kernel_answers_a_broken_mapping_with_nan_not_a_wild_write():
    operator, mapping, light, grids = small_system(4, seed=9)
    indices, weights = np.asarray(mapping.indices), np.asarray(mapping.weights)
    arguments = (1.0 / grids.noise, np.asarray(light), operator.psf, 30)
    for bad_indices, bad_weights in [
        (np.where(indices == 3, -2147483648, indices), weights),  # int cast of a NaN position
        (np.where(indices == 3, 30, indices), weights),
        (indices, np.where(indices == 3, np.nan, weights)),
    ]:
        terms = operator.stencil.terms(bad_indices, bad_weights, *arguments)
        pulled = operator.stencil.terms_vjp(bad_indices, bad_weights, *arguments, terms)
        for term in (*terms, *pulled):
            assert np.isnan(term).all()
    terms = operator.stencil.terms(indices, weights, *arguments)
    for term in (*terms, *operator.stencil.terms_vjp(indices, weights, *arguments, terms)):
        assert np.isfinite(term).all()


def test_the_kernel_gives_the_same_terms_on_any_number_of_threads_and_restores_blas():
    from threadpoolctl import threadpool_info, threadpool_limits

    operator, mapping, light, grids = small_system(4, seed=11)
    arguments = (np.asarray(mapping.indices), np.asarray(mapping.weights), 1.0 / grids.noise,
                 np.asarray(light), operator.psf, 30)
    results = {}
    # BLAS on two threads (the tests' environment has one), as a user's process may have it.
    with threadpool_limits(limits=2, user_api="blas"):
        blas_threads = [library["num_threads"] for library in threadpool_info()]
        for threads in (1, 3):
            stencil = PixelStencil(grids.mask, operator.psf.shape, threads)
            assert stencil.shares == threads
            terms = stencil.terms(*arguments)
            results[threads] = (*terms, *stencil.terms_vjp(*arguments, terms))
        assert [library["num_threads"] for library in threadpool_info()] == blas_threads
    for one, shared in zip(results[1], results[3], strict=True):
        np.testing.assert_allclose(shared, one, rtol=1e-12, atol=1e-13 * np.abs(one).max())


def test_the_kernel_refuses_a_psf_of_another_shape():
    operator, mapping, light, grids = small_system(4, seed=12)
    with pytest.raises(ValueError, match="PSF"):
        operator.stencil.terms(np.asarray(mapping.indices), np.asarray(mapping.weights),
                               1.0 / grids.noise, np.asarray(light), operator.psf[1:-1, 1:-1], 30)


def test_the_psf_is_an_operand_of_the_compiled_kernel_not_a_constant():
    """One executable serves another PSF of the same shape, passed as an argument (the operator
    is a pytree whose leaf is the PSF), with that PSF's numbers."""
    operator, mapping, light, grids = small_system(4, seed=13)

    @jax.jit
    def terms(operator, weights):
        return sparse_mesh_terms(operator, 30, mapping.indices, weights, light, grids.noise)

    wider = np.asarray(scipy.signal.convolve(operator.psf, np.ones((3, 3)) / 9, mode="same"))
    swapped = dataclasses.replace(operator, psf=wider)
    ours = terms(swapped, mapping.weights)
    assert terms(operator, mapping.weights)[0].shape == (30, 30)
    assert terms._cache_size() == 1
    rebuilt = mesh_operator(convolver(grids.mask, grids.blurring, wider), grids.mask, wider,
                            Execution("dense"))
    rows = weighted_mapping_rows(mapping, 30, rebuilt.blur, 1.0 / grids.noise)
    for term, expected in zip(ours, (rows @ rows.T, rows @ light.T), strict=True):
        np.testing.assert_allclose(np.asarray(term), np.asarray(expected), rtol=1e-11,
                                   atol=1e-12 * np.abs(expected).max())


def test_gram_upper_is_the_upper_triangle_of_the_gram_product_and_checks_blas_sizes():
    rows = np.random.default_rng(14).normal(size=(7, 64))
    np.testing.assert_allclose(np.triu(gram_upper(rows)), np.triu(rows @ rows.T), rtol=1e-13)
    assert blas_sizes(7, 64).tolist() == [7, 64, 64, 7]
    for n, k in [(2**31, 64), (7, 2**31)]:
        with pytest.raises(ValueError, match="32-bit"):
            blas_sizes(n, k)


@pytest.mark.parametrize("threads", ["2", 0, -1, 1.5, True])
def test_a_bad_kernel_thread_count_is_refused(threads):
    with pytest.raises(ValueError, match="kernel threads"):
        Execution(kernel_threads=threads)
    with pytest.raises(ValueError, match="kernel threads"):
        PixelStencil(np.ones((8, 8), bool), (3, 3), threads)


def test_the_execution_is_chosen_by_the_caller_not_the_backend():
    with pytest.raises(ValueError, match="formulation"):
        Execution("gpu")
    assert execution_for("cpu", 2) == Execution("sparse", 2, "sequential")
    assert execution_for("gpu", 1) == Execution("dense", 1, "vectorized")
    assert Execution() == Execution("sparse", 1, "sequential")


def test_importing_the_likelihood_reads_no_kernel_setting_from_the_environment():
    environment = {**os.environ, "LENSSERVE_KERNEL_THREADS": "two"}
    subprocess.run([sys.executable, "-c", "import likelihood, likelihood.curvature"],
                   env=environment, cwd=Path(__file__).resolve().parents[2], check=True,
                   timeout=600)
