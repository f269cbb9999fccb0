"""Public entry points: ``solve`` and ``solve_with_info``."""

import jax
import jax.numpy as jnp
from jax import Array

from nnls.info import Info
from nnls.vjp import differentiable_solve

# Compiled once per shape, so eager calls do not retrace the loops and branches every time.
_compiled_solve = jax.jit(differentiable_solve)


def _validated(Q, q, keep, cholesky) -> tuple[Array, Array, Array, Array | None]:
    """Arrays of one floating dtype with checked shapes; ValueError (at trace time) otherwise."""
    Q, q = jnp.asarray(Q), jnp.asarray(q)
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"nnls: Q must be a square (K, K) matrix, got shape {Q.shape}")
    k = Q.shape[0]
    if q.shape != (k,):
        raise ValueError(f"nnls: q must have shape (K,) = ({k},) to match Q, got {q.shape}")
    dtype = jnp.result_type(Q.dtype, q.dtype, jnp.float32)
    if keep is None:
        keep = jnp.ones(k, dtype=bool)
    keep = jnp.asarray(keep)
    if keep.shape != (k,) or keep.dtype != bool:
        raise ValueError(f"nnls: keep must be a bool mask of shape ({k},), got {keep.dtype}{keep.shape}")
    if cholesky is not None:
        cholesky = jnp.asarray(cholesky, dtype)
        if cholesky.shape != (k, k):
            raise ValueError(f"nnls: cholesky must have shape ({k}, {k}) like Q, got {cholesky.shape}")
    return Q.astype(dtype), q.astype(dtype), keep, cholesky


def solve_with_info(
    Q: Array, q: Array, *, keep: Array | None = None, cholesky: Array | None = None
) -> tuple[Array, Info]:
    """Exact non-negative solution of ``min_s 1/2 s^T Q s - q^T s, s >= 0`` and diagnostics.

    Q (K, K) symmetric positive definite (its symmetric part is used); q (K,).
    keep: optional bool (K,); entries where it is False are held at exactly 0.
    cholesky: optional lower Cholesky factor (K, K) of the whole Q (all K entries, whatever
        ``keep`` says). The caller who needs ``ln det Q = 2 sum(log(diag(L)))`` (or that of a
        leading block) factors once, differentiably, and passes the factor here; the solver then
        skips its own factorization of Q_keep,keep (near a good fit, its only one) and never
        differentiates through the factor: gradients reach Q through the implicit formula.
    Returns ``(s, info)``: s (K,) >= 0 and an ``Info``. Differentiable in Q and q (reverse mode;
    see ``vjp.py``); batched with ``vmap`` it runs lane after lane, each paying what it would alone.
    """
    Q, q, keep, cholesky = _validated(Q, q, keep, cholesky)
    return _compiled_solve(Q, q, keep, cholesky)


def solve(Q: Array, q: Array, *, keep: Array | None = None, cholesky: Array | None = None) -> Array:
    """The solution s (K,) of ``solve_with_info`` alone."""
    return solve_with_info(Q, q, keep=keep, cholesky=cholesky)[0]
