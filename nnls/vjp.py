"""Reverse-mode derivative by implicit differentiation on the final free set F.

At the solution ``s_F = Q_FF^-1 q_F`` and ``s = 0`` off F, so for a cotangent g of s
``v = [Q_FF^-1 g_F; 0]``, ``dL/dq = v`` and ``dL/dQ = -sym(v s^T) = -(v s^T + s v^T) / 2``
(symmetric because the solver uses the symmetric part of Q). It is exact wherever F is locally
stable and finite everywhere. The forward pass keeps only F; the backward pass factors Q_FF
again (or reuses the caller's factor of Q when F = keep). Info carries no gradient.
"""

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.custom_batching import sequential_vmap

from nnls.forward import forward
from nnls.info import Info
from nnls.restricted import factored_solve, free_block_solve
from nnls.scaling import jacobi_scaled


@sequential_vmap
def _free_set_solve(Q: Array, g: Array, free: Array, keep: Array, cholesky: Array | None) -> Array:
    """v (K,) = [Q_FF^-1 g_F; 0], via scaled variables: v = D (Qs_FF^-1 (D g)_F)."""
    Qs, gs, d = jacobi_scaled(Q, g)
    if cholesky is None:
        return d * free_block_solve(Qs, gs, free)
    vs = lax.cond(
        jnp.all(free == keep),
        lambda: factored_solve(d[:, None] * cholesky, gs, keep),
        lambda: free_block_solve(Qs, gs, free),
    )
    return d * vs


@jax.custom_vjp
def differentiable_solve(Q: Array, q: Array, keep: Array, cholesky: Array | None) -> tuple[Array, Info]:
    """``(s, info)`` of ``forward`` with the implicit-differentiation VJP in (Q, q)."""
    s, info, _ = forward(Q, q, keep, cholesky)
    return s, info


def _forward_saving_free_set(Q, q, keep, cholesky):
    s, info, free = forward(Q, q, keep, cholesky)
    return (s, info), (Q, s, free, keep, cholesky)


def _backward(residuals, cotangents):
    Q, s, free, keep, cholesky = residuals
    g = cotangents[0]
    v = _free_set_solve(Q, g, free, keep, cholesky)
    dQ = -0.5 * (jnp.outer(v, s) + jnp.outer(s, v))
    return dQ, v, None, None


differentiable_solve.defvjp(_forward_saving_free_set, _backward)
