"""Reverse-mode derivative by implicit differentiation on the final free set F.

At the solution ``s_F = Q_FF^-1 q_F`` and ``s = 0`` off F, so for a cotangent g of s
``v = [Q_FF^-1 g_F; 0]``, ``dL/dq = v`` and ``dL/dQ = -sym(v s^T) = -(v s^T + s v^T) / 2``
(symmetric because the solver uses the symmetric part of Q). It is exact wherever F is locally
stable and finite everywhere. The forward pass keeps only F; the backward pass factors Q_FF
again, or, given the caller's factor of Q and a bound set no larger than F, solves with that
factor and the bound entries' columns. Info carries no gradient.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.custom_batching import sequential_vmap

from nnls.dual_active_set import HeldLayout
from nnls.forward import forward
from nnls.info import Info
from nnls.restricted import factored_solve, free_block_solve
from nnls.scaling import jacobi_scaled


@sequential_vmap
def _free_set_solve(Q: Array, g: Array, free: Array, cholesky: Array | None) -> Array:
    """v (K,) = [Q_FF^-1 g_F; 0], via scaled variables: v = D (Qs_FF^-1 (D g)_F)."""
    Qs, gs, d = jacobi_scaled(Q, g)
    if cholesky is None:
        return d * free_block_solve(Qs, gs, free)
    vs = lax.cond(
        jnp.sum(~free) <= jnp.sum(free),
        lambda: factored_solve(d[:, None] * cholesky, gs, free),
        lambda: free_block_solve(Qs, gs, free),
    )
    return d * vs


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def differentiable_solve(
    Q: Array, q: Array, keep: Array, cholesky: Array | None, held_layout: HeldLayout
) -> tuple[Array, Info]:
    """``(s, info)`` of ``forward`` with the implicit-differentiation VJP in (Q, q)."""
    s, info, _ = forward(held_layout)(Q, q, keep, cholesky)
    return s, info


def _forward_saving_free_set(Q, q, keep, cholesky, held_layout):
    s, info, free = forward(held_layout)(Q, q, keep, cholesky)
    return (s, info), (Q, s, free, cholesky)


def _backward(held_layout, residuals, cotangents):
    Q, s, free, cholesky = residuals
    g = cotangents[0]
    v = _free_set_solve(Q, g, free, cholesky)
    dQ = -0.5 * (jnp.outer(v, s) + jnp.outer(s, v))
    return dQ, v, None, None


differentiable_solve.defvjp(_forward_saving_free_set, _backward)
