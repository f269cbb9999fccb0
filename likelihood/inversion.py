"""The linear inversion and the Bayesian log-evidence (autoarray `inversion/`, `fit/fit_util.py`).

Columns of the blurred mapping matrix B (N, K) are the linear objects' images. With W = 1/sigma^2:
D = B^T W d, F = B^T W B (+ 1e-3 on the diagonal of unregularized columns), H = block-diagonal
regularization; s = argmin_{s >= 0, s_i = 0 where not kept} 1/2 s^T (F+H) s - D^T s, and

    log Z = -1/2 [chi^2 + s_r^T H_r s_r + ln det (F+H)_r - ln det H_r + sum ln(2 pi sigma^2)]

where r is every column if all objects are regularized, else the regularized columns only (no
regularized column: the log-likelihood). The regularized columns are ordered first, so the
Cholesky factor of F+H starts with the factor of its regularized block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import nnls

# PyAutoArray adds this to the curvature diagonal of columns with no regularization.
UNREGULARIZED_DIAGONAL_FLOOR = 1e-3


class Inversion(NamedTuple):
    """The solved inversion and every term of its log-evidence (scalars unless shaped)."""

    amplitudes: jnp.ndarray  # (K,)
    model_image: jnp.ndarray  # (N,)
    chi_squared: jnp.ndarray
    regularization_term: jnp.ndarray
    log_det_curvature_regularization: jnp.ndarray
    log_det_regularization: jnp.ndarray
    noise_normalization: jnp.ndarray
    log_evidence: jnp.ndarray
    solver: nnls.Info


class LinearSystem(NamedTuple):
    """The normal equations of the linear objects: D = B^T W d (K,), F = B^T W B (K, K) without
    floors or regularization, and `image`, amplitudes s (K,) -> the blurred model image B s (N,)."""

    data_vector: jnp.ndarray
    curvature: jnp.ndarray
    image: Callable


def normal_equations(weighted_columns, weighted_data):
    """D = A b (K,) and F = A A^T (K, K) from A = B^T W^(1/2) (K, N), the blurred mapping matrix's
    columns divided by the noise, and b = W^(1/2) d (N,): the layout in which the Gram product
    and its derivative run fastest on CPU."""
    return weighted_columns @ weighted_data, gram(weighted_columns)


def dense_system(weighted_columns, data, noise) -> LinearSystem:
    """The system of A = B^T W^(1/2) (K, N) for data and noise (N,); B s = (s A) noise."""
    data_vector, curvature = normal_equations(weighted_columns, data * (1.0 / noise))
    return LinearSystem(data_vector, curvature,
                        lambda amplitudes: (amplitudes @ weighted_columns) * noise)


@jax.custom_vjp
def gram(rows):
    """(K, K) rows rows^T of (K, N) `rows`, with the one-product derivative (G + G^T) rows of a
    cotangent G (autodiff would take two)."""
    return rows @ rows.T


gram.defvjp(lambda rows: (gram(rows), rows),
            lambda rows, cotangent: ((cotangent + cotangent.T) @ rows,))


def log_det_cholesky(factor):
    """ln det A from its lower Cholesky factor."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(factor)))


def noise_normalization(noise):
    return jnp.sum(jnp.log(2.0 * jnp.pi * noise**2))


def held_last(keep: np.ndarray, n_regularized: int) -> np.ndarray | None:
    """A static order of the K columns that puts the regularized block's held columns (keep False)
    after its kept ones, each in their own order, and leaves the rest; None if nothing moves."""
    block = np.arange(n_regularized)
    held = ~keep[:n_regularized]
    order = np.concatenate([block[~held], block[held], np.arange(n_regularized, len(keep))])
    return None if np.array_equal(order, np.arange(len(keep))) else order


def solve_and_evidence(
    system: LinearSystem,
    regularization,
    n_regularized: int,
    keep: np.ndarray,
    data,
    noise,
    log_det_regularization=None,
    regularization_determinant=None,
) -> Inversion:
    """Solve the positive-only inversion and assemble the log-evidence.

    system: D, F and the model image; regularization H (R, R) for the first R = n_regularized
    columns (None when R = 0); keep: static (K,) bool;
    log_det_regularization: ln det H when the regularization knows it in closed form (else a
    Cholesky factorization of H computes it);
    regularization_determinant: (R, R) a matrix with H's determinant whose Cholesky factor is more
    accurate than H's (default H), factored for ln det H.
    """
    data_vector, curvature = system.data_vector, system.curvature
    k = curvature.shape[0]
    floor = np.where(np.arange(k) < n_regularized, 0.0, UNREGULARIZED_DIAGONAL_FLOOR)
    matrix = curvature + jnp.diag(floor)
    if n_regularized:
        matrix = matrix.at[:n_regularized, :n_regularized].add(regularization)
    # The NNLS projects the held columns out through the trailing block of the factor from the
    # first of them on: held last in the regularized block (whose factor gives ln det (F+H)_r
    # whatever its order), that block is theirs and the light's, not nearly all of F+H.
    order = held_last(keep, n_regularized)
    if order is not None:
        matrix, data_vector, keep = (matrix[np.ix_(order, order)], data_vector[order],
                                     keep[order])
    # One factorization serves the unconstrained solve inside NNLS and ln det (F+H)_r. ln det H's
    # factor comes from the same batched call: under vmap two LAPACK Choleskys in flight at once
    # each wait on XLA's CPU thread pool for their lanes and deadlock a 2-thread pool.
    if n_regularized and log_det_regularization is None:
        determinant = (regularization if regularization_determinant is None
                       else regularization_determinant)
        padded = jnp.eye(k, dtype=matrix.dtype).at[:n_regularized, :n_regularized].set(determinant)
        factor, determinant_factor = jnp.linalg.cholesky(jnp.stack([matrix, padded]))
        log_det_regularization = log_det_cholesky(determinant_factor[:n_regularized, :n_regularized])
    else:
        factor = jnp.linalg.cholesky(matrix)
    amplitudes, info = nnls.solve_with_info(matrix, data_vector, keep=keep, cholesky=factor)
    if order is not None:
        amplitudes = amplitudes[np.argsort(order)]
    model_image = system.image(amplitudes)
    chi_squared = jnp.sum(((data - model_image) / noise) ** 2)
    if n_regularized:
        s_r = amplitudes[:n_regularized]
        regularization_term = s_r @ regularization @ s_r
        log_det_system = log_det_cholesky(factor[:n_regularized, :n_regularized])
    else:
        regularization_term = log_det_system = log_det_regularization = jnp.zeros(())
    normalization = noise_normalization(noise)
    log_evidence = -0.5 * (
        chi_squared + regularization_term + log_det_system - log_det_regularization
        + normalization
    )
    return Inversion(
        amplitudes, model_image, chi_squared, regularization_term, log_det_system,
        log_det_regularization, normalization, log_evidence, info,
    )
