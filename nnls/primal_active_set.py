"""Primal active-set solve for problems with more active bounds than free entries.

In Jacobi-scaled variables (``Qs = D Q D``, ``qs = D q``, ``x = s / D``), for a candidate set C
of entries allowed to be non-zero (all others at 0), ``min 1/2 x_C^T Qs_CC x_C - qs_C^T x_C``,
``x_C >= 0`` is the small problem of ``slots.lawson_hanson`` with ``G = Qs_CC`` and
``u = -qs_C`` (its multipliers are x_C; its "x" is the gradient on C). C starts from a guess of
the free set and grows by generation: in chunks of ``CHUNK``, the entries outside C with the most
negative gradient ``Qs x - qs``; when none is negative, x solves the whole problem. Each chunk
only gathers entries of Q: no factorization, no triangular solve. The cost is that of
``slots.lawson_hanson`` in |C| slots, small when few entries are free.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve

from nnls import slots
from nnls.scaling import SIGN_TOLERANCE

# Slot counts for the candidate free entries (the guess is placed in the smallest that fits).
CAPACITIES = (512, 768)
CHUNK = 64
STEPS_PER_SLOT = 4


def primal_fits(guess_size: Array) -> Array:
    """Whether a start of this many entries fits the slots, with room for a chunk more."""
    return guess_size + CHUNK <= CAPACITIES[-1]


class _Rounds(NamedTuple):
    cands: slots.Candidates  # G = Qs_CC, u = -qs_C
    multipliers: slots.Slots  # x_C
    gradient: Array  # (K,) Qs x - qs


def _scaled_block(Q: Array, d: Array, rows: Array, columns: Array) -> Array:
    """``Qs[rows][:, columns]`` of the symmetric part of Q."""
    block = 0.5 * (Q[rows[:, None], columns[None, :]] + Q[columns[:, None], rows[None, :]].T)
    return d[rows][:, None] * block * d[columns][None, :]


def primal_active_set(
    Q: Array, q: Array, d: Array, keep: Array, guess: Array
) -> tuple[Array, Array, Array, Array]:
    """Solve ``min 1/2 s^T Q s - q^T s``, s >= 0 on keep, 0 off it, from a guess (K,) bool of the
    free set (within keep). Returns ``(s, free, iterations, converged)`` as ``dual_active_set``."""
    k = q.shape[0]
    qs = d * q
    tolerance = SIGN_TOLERANCE * jnp.max(jnp.where(keep, jnp.abs(qs), 0.0))

    def gradient(cands: slots.Candidates, lam: Array) -> Array:
        s = d * slots.on_entries(cands, lam, k)
        return d * (0.5 * (Q @ s + s @ Q) - q)

    def wanted(state: _Rounds) -> Array:
        return keep & ~state.cands.member & (state.gradient < -tolerance)

    def settled(state: _Rounds, m: int) -> Array:
        return state.multipliers.done & (state.multipliers.steps < STEPS_PER_SLOT * m)

    def solved(cands: slots.Candidates, multipliers: slots.Slots, m: int) -> _Rounds:
        multipliers = slots.lawson_hanson(
            cands.G, cands.u, cands.count, multipliers, tolerance, STEPS_PER_SLOT * m
        )
        return _Rounds(cands, multipliers, gradient(cands, multipliers.lam))

    def round_(state: _Rounds, m: int) -> _Rounds:
        entries, valid, new = slots.chosen(state.cands, state.gradient, wanted(state), min(CHUNK, m))
        index = state.cands.index.at[new].set(entries, mode="drop")
        filled = jnp.arange(m) < state.cands.count + jnp.sum(valid)
        G_new = jnp.where(filled[:, None] & valid[None, :], _scaled_block(Q, d, index, entries), 0.0)
        u_new = jnp.where(valid, -qs[entries], 0.0)
        cands = slots.with_candidates(state.cands, entries, valid, new, G_new, u_new)
        return solved(cands, state.multipliers, m)

    def run(m: int) -> tuple[Array, Array, Array, Array]:
        # Slots for the guess (for the largest qs first, if it does not fit).
        entries, valid, new = slots.chosen(slots.no_candidates(k, m, q.dtype), -qs, guess, m)
        pair = valid[:, None] & valid[None, :]
        cands = slots.with_candidates(
            slots.no_candidates(k, m, q.dtype), entries, valid, new,
            jnp.where(pair, _scaled_block(Q, d, entries, entries), 0.0),
            jnp.where(valid, -qs[entries], 0.0),
        )
        multipliers = slots.refreshed(slots.empty(m, q.dtype)._replace(active=valid), cands.G, cands.u)
        state = solved(cands, multipliers, m)

        def unfinished(state: _Rounds) -> Array:
            room = state.cands.count < m
            finite = jnp.all(jnp.isfinite(state.gradient))
            return jnp.any(wanted(state)) & room & settled(state, m) & finite

        state = lax.while_loop(unfinished, lambda state: round_(state, m), state)
        active = state.multipliers.active
        free = slots.on_entries(state.cands, active, k)
        # x_F from a fresh factorization of Qs_FF (the updated inverse drifts).
        factor = slots.active_factor(state.cands.G, active)
        x = jnp.where(active, cho_solve((factor, True), jnp.where(active, -state.cands.u, 0.0)), 0.0)
        s = jnp.where(free, jnp.maximum(d * slots.on_entries(state.cands, x, k), 0.0), 0.0)
        converged = ~jnp.any(wanted(state)) & settled(state, m) & jnp.all(jnp.isfinite(s))
        return s, free, state.multipliers.steps, converged

    capacities = sorted({min(c, k) for c in CAPACITIES})
    # The smallest capacity with room for the guess and a chunk more.
    needed = jnp.minimum(jnp.sum(guess) + CHUNK, capacities[-1])
    index = jnp.searchsorted(jnp.asarray(capacities), needed)
    return lax.switch(index, [lambda m=m: run(m) for m in capacities])
