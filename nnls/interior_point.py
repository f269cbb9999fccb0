"""Mehrotra predictor-corrector interior point for ``min 1/2 x^T Q x - q^T x, x >= 0``.

Used only by the fallback (``forward.py``), when the dual active-set method did not finish.
It works on the Jacobi-scaled problem with q rescaled to unit max-norm, so its relative
stopping test is invariant to the data's units; its answer is only the start of the exact
active-set polish that follows. Each iteration factors ``Q + diag(z / x)``.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve

MAX_ITERATIONS = 40
TOLERANCE = 1e-10
STEP_FRACTION = 0.99


class _State(NamedTuple):
    iteration: Array
    x: Array
    z: Array


def _max_step(v: Array, dv: Array) -> Array:
    """Largest a <= 1 with v + a dv >= 0 (v > 0)."""
    ratios = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratios))


def interior_point(Qs: Array, qs: Array, keep: Array) -> tuple[Array, Array, Array]:
    """``(x, free, iterations)``: the interior-point primal (K,) in the units of qs (> 0 on keep,
    0 off it), the free-set guess (K,) bool (kept entries whose primal exceeds their dual) and
    the number of iterations (factorizations) taken."""
    k = qs.shape[0]
    pair = keep[:, None] & keep[None, :]
    Q = jnp.where(pair, Qs, jnp.eye(k, dtype=Qs.dtype))  # held entries decouple and go to 0
    scale = jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))
    q = jnp.where(keep, qs, 0.0) / jnp.where(scale > 0, scale, 1.0)

    def residual_norm(state: _State) -> Array:
        dual = Q @ state.x - q - state.z
        return jnp.maximum(jnp.max(jnp.abs(dual)), state.x @ state.z / k)

    def iterate(state: _State) -> _State:
        x, z = state.x, state.z
        dual = Q @ x - q - z
        mu = x @ z / k
        factor = lax.linalg.cholesky(Q + jnp.diag(z / x), symmetrize_input=False)
        dx_affine = cho_solve((factor, True), -dual - z)
        dz_affine = -z - z / x * dx_affine
        ap, ad = _max_step(x, dx_affine), _max_step(z, dz_affine)
        sigma = ((x + ap * dx_affine) @ (z + ad * dz_affine) / k / mu) ** 3
        w = -x * z - dx_affine * dz_affine + sigma * mu
        dx = cho_solve((factor, True), -dual + w / x)
        dz = (w - z * dx) / x
        ap = STEP_FRACTION * _max_step(x, dx)
        ad = STEP_FRACTION * _max_step(z, dz)
        return _State(state.iteration + 1, x + ap * dx, z + ad * dz)

    def unfinished(state: _State) -> Array:
        norm = residual_norm(state)
        return (norm > TOLERANCE) & jnp.isfinite(norm) & (state.iteration < MAX_ITERATIONS)

    ones = jnp.ones_like(q)
    end = lax.while_loop(unfinished, iterate, _State(jnp.array(0, jnp.int32), ones, ones))
    return jnp.where(keep, end.x * scale, 0.0), keep & (end.x > end.z), end.iteration
