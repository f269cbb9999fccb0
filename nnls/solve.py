"""Public entry points: ``solve`` and ``solve_with_info``."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from nnls.dual_active_set import HeldLayout
from nnls.info import Info
from nnls.vjp import differentiable_solve

# Compiled once per shape, so eager calls do not retrace the loops and branches every time. Kept at
# module level because it is a compile cache of a pure function, not state: keyed by the
# arguments' shapes and dtypes and the static held layout (and JAX's own configuration, as any jit
# is), it changes no answer.
_compiled_solve = jax.jit(differentiable_solve, static_argnums=4)


def _held_layout(keep, k: int) -> HeldLayout:
    """How many entries are held and the first that is (static): exact when keep is concrete,
    else all K from 0."""
    try:
        held = np.flatnonzero(~np.asarray(keep))
    except jax.errors.TracerArrayConversionError:
        return HeldLayout(k, 0)
    return HeldLayout(len(held), int(held[0]) if len(held) else k)


def _validated(Q, q, keep, cholesky) -> tuple[Array, Array, Array, Array | None, HeldLayout]:
    """Arrays of one floating dtype with checked shapes, and the held entries' layout (static);
    ValueError (at trace time) otherwise."""
    Q, q = jnp.asarray(Q), jnp.asarray(q)
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"nnls: Q must be a square (K, K) matrix, got shape {Q.shape}")
    k = Q.shape[0]
    if q.shape != (k,):
        raise ValueError(f"nnls: q must have shape (K,) = ({k},) to match Q, got {q.shape}")
    dtype = jnp.result_type(Q.dtype, q.dtype, jnp.float32)
    held_layout = HeldLayout(0, k)
    if keep is not None:
        given, keep = keep, jnp.asarray(keep)
        if keep.shape != (k,) or keep.dtype != bool:
            raise ValueError(
                f"nnls: keep must be a bool mask of shape ({k},), got {keep.dtype}{keep.shape}"
            )
        held_layout = _held_layout(given, k)
    else:
        keep = jnp.ones(k, dtype=bool)
    if cholesky is not None:
        cholesky = jnp.asarray(cholesky, dtype)
        if cholesky.shape != (k, k):
            raise ValueError(f"nnls: cholesky must have shape ({k}, {k}) like Q, got {cholesky.shape}")
    return Q.astype(dtype), q.astype(dtype), keep, cholesky, held_layout


def solve_with_info(
    Q: Array, q: Array, *, keep: Array | None = None, cholesky: Array | None = None
) -> tuple[Array, Info]:
    """Exact non-negative solution of ``min_s 1/2 s^T Q s - q^T s, s >= 0`` and diagnostics.

    Q (K, K) symmetric positive definite (its symmetric part is used); q (K,).
    keep: optional bool (K,); entries where it is False are held at exactly 0. Pass it as a
        concrete (NumPy) array, not a traced one: its count of held entries sizes a triangular
        solve, and when it is traced that size is K. The solve runs over the trailing block from
        the first held entry on, so held entries placed last cost least.
    cholesky: optional lower Cholesky factor (K, K) of the whole Q (all K entries, whatever
        ``keep`` says). The caller who needs ``ln det Q = 2 sum(log(diag(L)))`` (or that of a
        leading block) factors once, differentiably, and passes the factor here; the solver then
        skips its own factorization of Q (its costliest step when few bounds are active) and
        never differentiates through the factor: gradients reach Q through the implicit formula.
    Returns ``(s, info)``: s (K,) >= 0 and an ``Info``. Differentiable in Q and q (reverse mode;
    see ``vjp.py``); batched with ``vmap`` it runs lane after lane, each paying what it would alone.
    """
    Q, q, keep, cholesky, held_layout = _validated(Q, q, keep, cholesky)
    return _compiled_solve(Q, q, keep, cholesky, held_layout)


def solve(Q: Array, q: Array, *, keep: Array | None = None, cholesky: Array | None = None) -> Array:
    """The solution s (K,) of ``solve_with_info`` alone."""
    return solve_with_info(Q, q, keep=keep, cholesky=cholesky)[0]
