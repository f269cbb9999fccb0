"""The solve of one lane: the dual active-set method on the Cholesky factor, and a fallback."""

from functools import partial

import jax.numpy as jnp
from jax import Array, lax
from jax.custom_batching import sequential_vmap

from nnls.dual_active_set import HeldLayout, dual_active_set
from nnls.info import Info, kkt_residual
from nnls.interior_point import interior_point
from nnls.lawson_hanson import lawson_hanson
from nnls.scaling import SIGN_TOLERANCE, jacobi_scaled

# The fallback's polish moves one entry per iteration; from the interior point's guess it needs
# a few dozen. The cap only guarantees termination: every entry may enter and leave once, plus slack.
POLISH_SLACK = 32


def _general(Q: Array, q: Array, keep: Array) -> tuple[Array, Array, Array, Array]:
    """Fallback: an interior-point solve, polished exactly by the primal active-set method.

    Runs only when the dual method did not finish (more candidate bounds than its slots, a
    step cap, or a factor with NaN); it factors Q_FF at every iteration, so it is slow at large K.
    """
    Qs, qs, d = jacobi_scaled(Q, q)
    x_interior, free0, interior_iterations = interior_point(Qs, qs, keep)
    x0 = jnp.where(free0, x_interior, 0.0)
    x, free, iterations, converged = lawson_hanson(
        Qs, qs, keep, x0, free0, POLISH_SLACK + 2 * qs.shape[0], SIGN_TOLERANCE
    )
    return d * x, free, interior_iterations + iterations, converged


def _solve_lane(
    Q: Array, q: Array, keep: Array, cholesky: Array | None, *, held_layout: HeldLayout
) -> tuple[Array, Info, Array]:
    diagonal = jnp.diagonal(Q)
    d = jnp.where(diagonal > 0, lax.rsqrt(jnp.where(diagonal > 0, diagonal, 1.0)), jnp.nan)
    L = lax.linalg.cholesky(Q) if cholesky is None else cholesky  # of the symmetric part
    s, free, iterations, converged = dual_active_set(Q, q, L, d, keep, held_layout)
    s, free, iterations, converged = lax.cond(
        converged,
        lambda: (s, free, iterations, converged),
        lambda: (lambda r: (r[0], r[1], iterations + r[2], r[3]))(_general(Q, q, keep)),
    )
    gradient = 0.5 * (Q @ s + s @ Q) - q  # with the symmetric part of Q
    residual = kkt_residual(s / d, d * gradient, d * q, keep)
    # NaN anywhere in the data shows up in the residual even where s itself stayed finite:
    # return NaN then, so that bad input can never pass for a solution.
    finite = jnp.isfinite(residual)
    s = jnp.where(finite, s, jnp.nan)
    return s, Info(iterations, residual, converged & finite), free


def forward(held_layout: HeldLayout):
    """The per-lane solve ``(Q, q, keep, cholesky) -> (s, info, free)`` for problems whose held
    entries are as ``held_layout`` says (static: it sizes the held entries' triangular solve).

    s (K,) >= 0, its ``Info`` and the final free set (K,) bool. ``sequential_vmap``: a batch
    runs lane after lane (``lax.map``). On CPU a loop of single factorizations beats one batched
    factorization, and each lane's loops and branches then run for that lane alone instead of
    every lane paying for the slowest.
    """
    return sequential_vmap(partial(_solve_lane, held_layout=held_layout))
