"""Primal active-set polish (Lawson & Hanson 1974, in the normal-equation form, as scipy's NNLS).

From a feasible x (zero off the free set F, >= 0 on it), each iteration solves the subspace
problem ``z_F = Q_FF^-1 q_F``. If some z_F < 0 it moves x towards z as far as feasibility allows
and frees up nothing but drops the entries that reach zero; otherwise x = z and the bound entry
with the most negative gradient ``y = Q x - q`` joins F, or, if none is negative, x is optimal.
The objective never increases, so it terminates; it changes F one entry at a time, which is why
it only polishes the start found by the interior point.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax

from nnls.restricted import free_block_solve


class _State(NamedTuple):
    iteration: Array
    x: Array
    free: Array
    done: Array


def lawson_hanson(
    Qs: Array, qs: Array, keep: Array, x0: Array, free0: Array, max_iterations: int, tolerance: float
) -> tuple[Array, Array, Array, Array]:
    """Qs (K, K) SPD (Jacobi-scaled), qs (K,), keep (K,) bool, x0 (K,) >= 0 zero off free0 (K,).

    Returns ``(x, free, iterations, converged)``: x (K,) >= 0 (zero off ``free``), the final free
    set (K,) bool, the iterations and whether the last one found x optimal (and finite).
    """
    y_tolerance = tolerance * jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))

    def iterate(state: _State) -> _State:
        z = free_block_solve(Qs, qs, state.free)
        x_tolerance = tolerance * jnp.max(jnp.abs(z))
        blocked = state.free & (z < -x_tolerance)
        ratios = jnp.where(blocked, state.x / jnp.where(blocked, state.x - z, 1.0), 1.0)
        step = jnp.minimum(jnp.min(ratios), 1.0)
        moved = jnp.where(state.free, jnp.maximum(state.x + step * (z - state.x), 0.0), 0.0)
        reached_zero = blocked & (jnp.arange(qs.shape[0]) == jnp.argmin(ratios)) | (moved <= 0)
        optimal_on_free = ~jnp.any(blocked)
        x = jnp.where(optimal_on_free, jnp.where(state.free, jnp.maximum(z, 0.0), 0.0), moved)
        gradient = Qs @ x - qs
        pulling = keep & ~state.free & (gradient < -y_tolerance)
        entering = jnp.arange(qs.shape[0]) == jnp.argmin(jnp.where(pulling, gradient, jnp.inf))
        free = jnp.where(
            optimal_on_free, state.free | (entering & jnp.any(pulling)), state.free & ~reached_zero
        )
        done = optimal_on_free & ~jnp.any(pulling)
        return _State(state.iteration + 1, x, free, done)

    def unfinished(state: _State) -> Array:
        return ~state.done & (state.iteration < max_iterations) & jnp.all(jnp.isfinite(state.x))

    start = _State(jnp.array(0, jnp.int32), x0, free0, jnp.array(False))
    end = lax.while_loop(unfinished, iterate, start)
    return end.x, end.free, end.iteration, end.done & jnp.all(jnp.isfinite(end.x))
