"""Diagnostics returned next to the solution."""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array


class Info(NamedTuple):
    """What the solve did, as arrays (one per lane under ``vmap``).

    iterations: int32, active-set exchanges of the dual method (0: the unconstrained solution
        with the held entries at zero was already non-negative), plus, when the fallback ran,
        its interior-point and active-set polish iterations.
    kkt_residual: float, ``max_i |min(x_i, (Qs x - qs)_i)| / max|qs|`` over the kept entries, in
        Jacobi-scaled variables (``Qs = D Q D``, ``qs = D q``, ``x = s / D``, ``D = diag(Q)^-1/2``):
        the natural residual of the complementarity conditions, zero exactly at the optimum.
    converged: bool, an active set with no sign violation (beyond roundoff tolerances) was
        found within the iteration caps, and the result is finite.
    """

    iterations: Array
    kkt_residual: Array
    converged: Array


def kkt_residual(x: Array, gradient: Array, qs: Array, keep: Array) -> Array:
    """Natural KKT residual ``||min(x, Qs x - qs)||_inf / ||qs||_inf`` over kept entries (scalar),
    given x (K,), its gradient ``Qs x - qs`` (K,) and qs (K,) in Jacobi-scaled variables."""
    violation = jnp.where(keep, jnp.abs(jnp.minimum(x, gradient)), 0.0)
    scale = jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))
    return jnp.max(violation) / jnp.where(scale > 0, scale, 1.0)
