"""Exact non-negative least squares in JAX: ``min_s 1/2 s^T Q s - q^T s`` subject to ``s >= 0``.

An unconstrained Cholesky solve first (near a good fit it is the answer), then a few block
principal pivoting exchanges on the Jacobi-scaled problem, and if those do not settle an
interior-point start polished exactly by the primal active-set method. Lanes of a ``vmap`` run
one after another, each paying what it would alone; reverse-mode gradients by implicit
differentiation on the final free set.
"""

from nnls.info import Info
from nnls.solve import solve, solve_with_info

__all__ = ["Info", "solve", "solve_with_info"]
