"""`ConstantSplit` regularization of a Delaunay mesh (autoarray `regularization/constant_split.py`).

Each vertex i is split into a cross of four points at +-0.5 sqrt(A_i) along y and x (A_i its
barycentric dual area). A split point interpolates the source with barycentric weights w on its
triangle (its nearest vertex with weight 1 outside the hull); its stencil is the finite difference
between vertex i and that interpolation, v = e_i - sum_k w_k e_{c_k}. With one coefficient lambda,

    H = lambda^2 sum_{i, cross points} v v^T + 1e-8 I

(autoarray `regularization_util.reg_split_from` and `pixel_splitted_regularization_matrix_from`,
JAX path: its 2e-8 diagonal jitter is halved to 1e-8).
"""

from dataclasses import dataclass

import jax.numpy as jnp

from likelihood.regularization.regularization import Regularization, RegularizationTerms

# The reference's jitter keeping H positive definite.
DIAGONAL_JITTER = 1e-8


def _stencils(split_corners, split_weights):
    """(4V, 4) vertex indices and coefficients of every split point's stencil v (-1 padding -> 0)."""
    n_vertices = split_corners.shape[0] // 4
    own = jnp.repeat(jnp.arange(n_vertices), 4)[:, None]
    index = jnp.concatenate([jnp.maximum(split_corners, 0), own], axis=1)
    stencil = jnp.concatenate(
        [jnp.where(split_corners >= 0, -split_weights, 0.0), jnp.ones_like(own, split_weights.dtype)],
        axis=1,
    )
    return index, stencil


def constant_split_regularization(coefficient, split_corners, split_weights):
    """(V, V) H from the split points' triangle corners (4V, 3) (-1 padded) and weights (4V, 3).

    Rows 4i..4i+3 belong to vertex i. Scattering the outer product of a stencil whose indices repeat
    (the vertex i among its own split point's corners) sums the repeats, so it equals v v^T.
    """
    n_vertices = split_corners.shape[0] // 4
    index, stencil = _stencils(split_corners, split_weights)
    outer = coefficient**2 * stencil[:, :, None] * stencil[:, None, :]
    matrix = jnp.zeros((n_vertices, n_vertices)).at[index[:, :, None], index[:, None, :]].add(outer)
    return matrix + DIAGONAL_JITTER * jnp.eye(n_vertices)


def constant_split_determinant(regularization, coefficient, split_corners, split_weights):
    """(V, V) T^T H T, which has H's determinant (det T = 1) and an accurate Cholesky factor.

    H = `regularization` = `constant_split_regularization(coefficient, ...)`. A stencil's weights
    sum to one, so v . 1 = 0 and H 1 = 1e-8 1: H's smallest eigenvalue is the jitter, which the
    rounding of H's entries (~1e-16 lambda^2) swamps once lambda >~ 1e2, so a Cholesky factor of H
    loses ln det H (and is NaN from lambda ~ 1e4). T = [1, e_1, ..., e_{V-1}]: T^T H T is H with
    row and column 0 replaced by h = H 1 and corner 1^T H 1, both taken from the stencils' sums
    r = v . 1 (rounding-sized, and squared in 1^T H 1 = lambda^2 |r|^2 + 1e-8 V) rather than from
    H's entries. The rest is H without vertex 0, positive definite at the scale lambda^2.
    """
    index, stencil = _stencils(split_corners, split_weights)
    sums = stencil.sum(axis=1)
    n_vertices = regularization.shape[0]
    h = coefficient**2 * jnp.zeros(n_vertices).at[index].add(stencil * sums[:, None]) + DIAGONAL_JITTER
    corner = coefficient**2 * jnp.sum(sums**2) + DIAGONAL_JITTER * n_vertices
    return regularization.at[0, :].set(h).at[:, 0].set(h).at[0, 0].set(corner)


@dataclass(frozen=True)
class ConstantSplit(Regularization):
    """ConstantSplit on a `mesh.delaunay.DelaunayMesh`'s split points; ln det H through the
    better-conditioned `constant_split_determinant`."""

    def terms(self, coefficient, source_plane_mesh, prepared) -> RegularizationTerms:
        corners, weights = source_plane_mesh.split_corners, source_plane_mesh.split_weights
        matrix = constant_split_regularization(coefficient, corners, weights)
        return RegularizationTerms(matrix, determinant=constant_split_determinant(
            matrix, coefficient, corners, weights))
