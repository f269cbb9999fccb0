"""Solves with a lower triangular factor L (K, K), without copying L.

LAPACK's ``trsm`` reads column-major arrays. Handed a row-major L, XLA on CPU first copies it
into column-major order (K^2 memory traffic, measured: 5x the cost of the solve itself for one
right-hand side at K=1285). Row-major L is column-major ``L^T``, so solving with ``U = L^T``
(upper) and the transposition flag passes the same bytes without a copy.
"""

from jax import Array, lax


def lower_solve(L: Array, b: Array, *, transpose: bool = False) -> Array:
    """``L^-1 b`` (or ``L^-T b``); L (K, K) lower triangular, b (K,) or (K, n)."""
    matrix = b if b.ndim == 2 else b[:, None]
    x = lax.linalg.triangular_solve(L.T, matrix, left_side=True, lower=False, transpose_a=not transpose)
    return x if b.ndim == 2 else x[:, 0]
