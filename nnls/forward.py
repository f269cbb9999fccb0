"""The solve of one lane: unconstrained solve, pivoting, and an interior-point rescue."""

import jax.numpy as jnp
from jax import Array, lax
from jax.custom_batching import sequential_vmap

from nnls.info import Info, kkt_residual
from nnls.interior_point import interior_point
from nnls.lawson_hanson import lawson_hanson
from nnls.pivoting import SIGN_TOLERANCE, pivot
from nnls.restricted import factored_solve, free_block_solve
from nnls.scaling import jacobi_scaled

# Pivoting from the unconstrained solution either settles within a few exchanges (few active
# bounds, the common case near a good fit) or tends to cycle (many, ill-conditioned: measured
# on the K=80 MGE problems, where even 400 exchanges did not settle).
WARM_EXCHANGES = 8
# The polish moves one entry per iteration; from the interior point's guess it needs a few
# dozen. The cap only guarantees termination: every entry may enter and leave once, plus slack.
POLISH_SLACK = 32


def _rescue(Qs: Array, qs: Array, keep: Array, warm: tuple) -> tuple:
    """An interior-point solve, polished exactly by the primal active-set method."""
    x_interior, free0, interior_iterations = interior_point(Qs, qs, keep)
    x0 = jnp.where(free0, x_interior, 0.0)
    x, free, iterations, converged = lawson_hanson(
        Qs, qs, keep, x0, free0, POLISH_SLACK + 2 * qs.shape[0], SIGN_TOLERANCE
    )
    return x, free, warm[2] + interior_iterations + iterations, converged


@sequential_vmap
def forward(Q: Array, q: Array, keep: Array, cholesky: Array | None) -> tuple[Array, Info, Array]:
    """Returns ``(s, info, free)``: s (K,) >= 0, its ``Info`` and the final free set (K,) bool.

    ``sequential_vmap``: a batch runs lane after lane (``lax.map``). On CPU a loop of single
    factorizations beats one batched factorization, and each lane's loops and branches then run
    for that lane alone instead of every lane paying for the slowest.
    """
    Qs, qs, d = jacobi_scaled(Q, q)
    if cholesky is None:
        x0 = free_block_solve(Qs, qs, keep)
    else:
        x0 = factored_solve(d[:, None] * cholesky, qs, keep)
    warm = pivot(Qs, qs, keep, keep, x0, WARM_EXCHANGES)
    x, free, iterations, converged = lax.cond(warm[3], lambda: warm, lambda: _rescue(Qs, qs, keep, warm))
    residual = kkt_residual(Qs, qs, x, keep)
    # NaN anywhere in the data shows up in the residual even where x itself stayed finite:
    # return NaN then, so that bad input can never pass for a solution.
    finite = jnp.isfinite(residual)
    s = jnp.where(finite, d * x, jnp.nan)
    return s, Info(iterations, residual, converged & finite), free
