"""Exact non-negative least squares in JAX: ``min_s 1/2 s^T Q s - q^T s`` subject to ``s >= 0``.

A dual active-set method on the Cholesky factor of Q (the caller's, when it has one for
``ln det Q``): the unconstrained solution with the held entries at zero, then only the bounds it
violates, solved exactly in a small problem of their multipliers and grown until no bound is
violated; when most bounds turn out active, the same method on the free entries instead. An
interior point polished by the primal active-set method is the fallback. Lanes of a ``vmap``
run one after another, each paying what it would alone; reverse-mode gradients by implicit
differentiation on the final free set.
"""

from nnls.info import Info
from nnls.solve import solve, solve_with_info

__all__ = ["Info", "solve", "solve_with_info"]
