"""Block principal pivoting for the LCP of ``min 1/2 x^T Q x - q^T x, x >= 0`` (scaled variables).

Júdice & Pires (1994), as used for NNLS by Kim & Park (2011): given a free set F, solve
``x_F = Q_FF^-1 q_F`` (``x = 0`` off F) and take the dual ``y = Q x - q``. The infeasible set is
``V = {i in F: x_i < 0} U {i not in F: y_i < 0}``; exchange all of V between F and its complement
while |V| keeps decreasing (or for ``BACKUP_TRIES`` more tries), else only V's largest index
(Murty's rule, which terminates finitely). Started from F = keep, whose solve is the unconstrained
one, the first exchange clamps the unconstrained solution: a warm start that near a good fit
needs few exchanges or none. On ill-conditioned problems with many active bounds it cycles;
``forward.py`` then hands over to the interior point and the Lawson-Hanson polish.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax

from nnls.restricted import free_block_solve

BACKUP_TRIES = 3
# Sign tests ignore violations below this fraction of the data's scale: they are roundoff, and
# exchanging them could cycle; leaving one in place changes the objective only at second order.
SIGN_TOLERANCE = 1e-12


class _State(NamedTuple):
    iteration: Array
    free: Array
    x: Array
    violations: Array
    fewest_violations: Array
    backups_left: Array


def _violations(Qs: Array, qs: Array, x: Array, free: Array, keep: Array) -> Array:
    """Mask (K,) of the free entries with x < 0 and the bound entries with y = Qs x - qs < 0."""
    gradient = Qs @ x - qs
    x_tolerance = SIGN_TOLERANCE * jnp.max(jnp.abs(x))
    y_tolerance = SIGN_TOLERANCE * jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))
    return keep & jnp.where(free, x < -x_tolerance, gradient < -y_tolerance)


def pivot(
    Qs: Array, qs: Array, keep: Array, free0: Array, x0: Array, max_iterations: int
) -> tuple[Array, Array, Array, Array]:
    """Block principal pivoting from the free set ``free0`` with its solution ``x0``.

    Qs (K, K) symmetric positive definite (Jacobi-scaled), qs (K,), keep (K,) bool, free0 (K,)
    bool (within keep), x0 (K,) its restricted solve; at most ``max_iterations`` exchanges.
    Returns ``(x, free, iterations, converged)``: x (K,) >= 0 (zero off ``free``), the final free
    set (K,) bool, the number of exchanges and whether no sign violation remains (and x is finite).
    """
    k = qs.shape[0]

    def exchange(state: _State) -> _State:
        count = jnp.sum(state.violations)
        improved = count < state.fewest_violations
        full = improved | (state.backups_left > 0)
        largest = k - 1 - jnp.argmax(state.violations[::-1])
        flip = jnp.where(full, state.violations, jnp.arange(k) == largest)
        free = state.free ^ flip
        x = free_block_solve(Qs, qs, free)
        return _State(
            iteration=state.iteration + 1,
            free=free,
            x=x,
            violations=_violations(Qs, qs, x, free, keep),
            fewest_violations=jnp.minimum(count, state.fewest_violations),
            backups_left=jnp.where(improved, BACKUP_TRIES, jnp.maximum(state.backups_left - 1, 0)),
        )

    def unfinished(state: _State) -> Array:
        return jnp.any(state.violations) & (state.iteration < max_iterations)

    start = _State(
        iteration=jnp.array(0, jnp.int32),
        free=free0,
        x=x0,
        violations=_violations(Qs, qs, x0, free0, keep),
        fewest_violations=jnp.array(k + 1),
        backups_left=jnp.array(BACKUP_TRIES),
    )
    end = lax.while_loop(unfinished, exchange, start)
    x = jnp.where(end.free, jnp.maximum(end.x, 0.0), 0.0)
    converged = ~jnp.any(end.violations) & jnp.all(jnp.isfinite(end.x))
    return x, end.free, end.iteration, converged
