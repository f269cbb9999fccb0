"""`ConstantSplit` regularization of a Delaunay mesh (autoarray `regularization/constant_split.py`).

Each vertex i is split into a cross of four points at +-0.5 sqrt(A_i) along y and x (A_i its
barycentric dual area). A split point interpolates the source with barycentric weights w on its
triangle (its nearest vertex with weight 1 outside the hull); its stencil is the finite difference
between vertex i and that interpolation, v = e_i - sum_k w_k e_{c_k}. With one coefficient lambda,

    H = lambda^2 sum_{i, cross points} v v^T + 1e-8 I

(autoarray `regularization_util.reg_split_from` and `pixel_splitted_regularization_matrix_from`,
JAX path: its 2e-8 diagonal jitter is halved to 1e-8).
"""

import jax.numpy as jnp

# The reference's jitter keeping H positive definite.
DIAGONAL_JITTER = 1e-8


def constant_split_regularization(coefficient, split_corners, split_weights):
    """(V, V) H from the split points' triangle corners (4V, 3) (-1 padded) and weights (4V, 3).

    Rows 4i..4i+3 belong to vertex i. Scattering the outer product of a stencil whose indices repeat
    (the vertex i among its own split point's corners) sums the repeats, so it equals v v^T.
    """
    n_vertices = split_corners.shape[0] // 4
    own = jnp.repeat(jnp.arange(n_vertices), 4)[:, None]
    index = jnp.concatenate([jnp.maximum(split_corners, 0), own], axis=1)
    stencil = jnp.concatenate(
        [jnp.where(split_corners >= 0, -split_weights, 0.0), jnp.ones_like(own, split_weights.dtype)],
        axis=1,
    )
    outer = coefficient**2 * stencil[:, :, None] * stencil[:, None, :]
    matrix = jnp.zeros((n_vertices, n_vertices)).at[index[:, :, None], index[:, None, :]].add(outer)
    return matrix + DIAGONAL_JITTER * jnp.eye(n_vertices)
