"""Diagnostics returned next to the solution."""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array


class Info(NamedTuple):
    """What the solve did, as arrays (one per lane under ``vmap``).

    iterations: int32, factorizations after the unconstrained solve (0: the unconstrained
        solution on ``keep`` was already non-negative): block-principal-pivoting exchanges, plus,
        when those did not settle, interior-point and active-set polish iterations.
    kkt_residual: float, ``max_i |min(x_i, (Qs x - qs)_i)| / max|qs|`` over the kept entries, in
        Jacobi-scaled variables (``Qs = D Q D``, ``qs = D q``, ``x = s / D``, ``D = diag(Q)^-1/2``):
        the natural residual of the complementarity conditions, zero exactly at the optimum.
    converged: bool, the pivoting found a free set with no sign violation (beyond roundoff
        tolerances) within its iteration cap, and the result is finite.
    """

    iterations: Array
    kkt_residual: Array
    converged: Array


def kkt_residual(Qs: Array, qs: Array, x: Array, keep: Array) -> Array:
    """Natural KKT residual ``||min(x, Qs x - qs)||_inf / ||qs||_inf`` over kept entries (scalar)."""
    gradient = Qs @ x - qs
    violation = jnp.where(keep, jnp.abs(jnp.minimum(x, gradient)), 0.0)
    scale = jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))
    return jnp.max(violation) / jnp.where(scale > 0, scale, 1.0)
