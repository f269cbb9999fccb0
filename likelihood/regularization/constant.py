"""Constant regularization on a mesh's neighbour graph (autoarray `regularization/constant.py`).

`constant_regularization_matrix_from`: with coefficient lambda and the mesh's neighbour lists,

    H = lambda^2 L + 1e-8 I,   L = D - A the graph Laplacian (D: neighbour counts, A: adjacency),

so s^T H s = lambda^2 sum over neighbour pairs (s_i - s_j)^2 + 1e-8 |s|^2. For the rectangular
mesh the graph is the 4-neighbour lattice (`rectangular_neighbors_from`), whose Laplacian is
L_y (x) I + I (x) L_x with path Laplacians of eigenvalues 2 - 2 cos(pi k / n), k = 0..n-1: so
ln det H = sum over (j, k) of ln(lambda^2 (mu_j + nu_k) + 1e-8) needs no factorization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from likelihood.regularization.regularization import Regularization, RegularizationTerms

# The reference adds this to the diagonal so that H is positive definite.
REGULARIZATION_DIAGONAL = 1e-8


class ConstantRegularization(NamedTuple):
    """Static description of Constant regularization on a fixed graph.

    laplacian: (S, S) graph Laplacian; laplacian_eigenvalues: (S,) its eigenvalues.
    """

    laplacian: np.ndarray
    laplacian_eigenvalues: np.ndarray


def lattice_laplacian(shape: tuple[int, int]) -> np.ndarray:
    """(S, S) Laplacian of the 4-neighbour graph of a row-major (rows, cols) lattice."""
    rows, cols = shape
    index = np.arange(rows * cols).reshape(shape)
    pairs = np.concatenate([
        np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1),
        np.stack([index[:-1, :].ravel(), index[1:, :].ravel()], axis=1),
    ])
    laplacian = np.zeros((rows * cols, rows * cols))
    np.add.at(laplacian, (pairs[:, 0], pairs[:, 1]), -1.0)
    np.add.at(laplacian, (pairs[:, 1], pairs[:, 0]), -1.0)
    laplacian[np.diag_indices(rows * cols)] = -laplacian.sum(axis=1)
    return laplacian


def lattice_laplacian_eigenvalues(shape: tuple[int, int]) -> np.ndarray:
    """(S,) eigenvalues of `lattice_laplacian(shape)` in closed form."""
    def path(n):
        return 2.0 - 2.0 * np.cos(np.pi * np.arange(n) / n)

    return (path(shape[0])[:, None] + path(shape[1])[None, :]).ravel()


def lattice_regularization(shape: tuple[int, int]) -> ConstantRegularization:
    """The static part of Constant regularization on a rectangular mesh of `shape`."""
    return ConstantRegularization(lattice_laplacian(shape), lattice_laplacian_eigenvalues(shape))


def regularization_matrix(static: ConstantRegularization, coefficient):
    """(S, S) H = coefficient^2 L + 1e-8 I."""
    laplacian = jnp.asarray(static.laplacian)
    return coefficient**2 * laplacian + REGULARIZATION_DIAGONAL * jnp.eye(laplacian.shape[0])


def log_det_regularization(static: ConstantRegularization, coefficient):
    """ln det H from the Laplacian's eigenvalues (exact; no factorization)."""
    return jnp.sum(jnp.log(coefficient**2 * static.laplacian_eigenvalues + REGULARIZATION_DIAGONAL))


@dataclass(frozen=True)
class ConstantLattice(Regularization):
    """Constant regularization on the 4-neighbour lattice of a rectangular mesh (`mesh.shape`)."""

    def prepare(self, mesh, vertices) -> ConstantRegularization:
        return lattice_regularization(mesh.shape)

    def terms(self, coefficient, source_plane_mesh, prepared) -> RegularizationTerms:
        return RegularizationTerms(regularization_matrix(prepared, coefficient),
                                   log_det=log_det_regularization(prepared, coefficient))
