"""Jacobi (diagonal) scaling: ``Qs = D Q D``, ``qs = D q`` with ``D = diag(Q)^-1/2``.

Scaled, Q has a unit diagonal and x = s / D lives in the units of qs, so one relative tolerance
serves every problem whatever its units; the solution is unchanged (s = D x). A non-positive
diagonal (Q not positive definite) gives NaN, which the result then carries and flags.
"""

import jax.numpy as jnp
from jax import Array, lax

# Sign tests (is x_i < 0? is the gradient < 0?) ignore violations below this fraction of the
# scaled data's size: they are roundoff, and acting on them could cycle; leaving one in place
# changes the objective only at second order.
SIGN_TOLERANCE = 1e-12


def jacobi_scaled(Q: Array, q: Array) -> tuple[Array, Array, Array]:
    """``(Qs, qs, d)``: Qs (K, K) the scaled symmetric part of Q, qs (K,), d (K,) = diag(Q)^-1/2."""
    diagonal = jnp.diagonal(Q)
    d = jnp.where(diagonal > 0, lax.rsqrt(jnp.where(diagonal > 0, diagonal, 1.0)), jnp.nan)
    Qs = 0.5 * (Q + Q.T) * d[:, None] * d[None, :]
    return Qs, d * q, d
