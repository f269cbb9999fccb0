"""Dual active-set solve given a Cholesky factor ``Q = L L^T``, in Jacobi-scaled variables.

With ``L_s = D L`` (``D = diag(Q)^-1/2``, applied implicitly) and whitened coordinates
``y = L_s^T x``, the objective is ``1/2 |y - v|^2`` (``v = L_s^-1 qs = L^-1 q``) and the bound on
entry j reads ``w_j^T y >= 0`` with ``w_j = L_s^-1 e_j``: the solution is the projection of v on
a polyhedral cone. Held entries (``w_j^T y = 0``) are projected out first:
``P = I - W_H (W_H^T W_H)^-1 W_H^T`` with ``W_H = L_s^-1 E_H`` (one triangular solve with |H|
right-hand sides), ``v' = P v``, ``w'_j = P w_j``. For a candidate set C of bounds,
``x = L_s^-T (v' + W'_C lam)`` with multipliers ``lam >= 0`` solving the small problem
``min 1/2 lam^T G lam + u^T lam``, ``G = W'_C^T W'_C``, ``u = W'_C^T v'`` (x on C is
``u + G lam``), solved exactly by ``slots.lawson_hanson``. C grows by constraint generation:
in chunks of up to 64 (one triangular solve each), the most negative entries of x outside C;
when none is negative, x solves the whole problem. Near a good fit C holds a few hundred
entries and the whole solve costs about one triangular solve with |H| + |C| right-hand sides.

Shapes are static: C lives in slots, first ``CAPACITIES[0]``, moved to the next capacity when
full. Past ``PRIMAL_SWITCH`` slots, if the bounds look as numerous as the free entries, the
primal method (``primal_active_set.py``) takes over. When the last capacity would overflow, or
a step cap is hit, ``converged`` is False and ``forward.py`` falls back to the general solver.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve

from nnls import slots
from nnls.primal_active_set import primal_active_set, primal_fits
from nnls.scaling import SIGN_TOLERANCE
from nnls.triangular import lower_solve

# Slot counts for the candidate bounds: an exchange costs a few passes over an m x m matrix, so
# start small; the last capacity is the largest |C| handled here.
CAPACITIES = (128, 256, 384, 512, 1024)
# Where C overflows this capacity, the primal method takes over if the active and violated
# bounds exceed this share of the kept entries and its slots can hold its start (its exchanges
# cost passes over |F| x |F|).
PRIMAL_SWITCH = 256
PRIMAL_SHARE = 0.4
# Right-hand sides per triangular solve when C grows: the smallest that takes every violated
# bound (the last rounds add few), at most the last.
CHUNKS = (16, 32, 64)
# Every bound may enter and leave the active set a few times; the cap only ends a cycle that
# roundoff could cause on a degenerate problem.
STEPS_PER_SLOT = 4


class HeldLayout(NamedTuple):
    """Static facts about the held entries (keep False): at most ``capacity`` of them, none before
    index ``start``. Their whitened columns ``L^-1 e_j`` are zero above row j, so they come from
    the trailing block ``L[start:, start:]`` alone: when the caller orders the held entries last
    (``inversion.solve_and_evidence`` does), that solve is small."""

    capacity: int
    start: int


class _Held(NamedTuple):
    W: Array  # (K, h) L_s^-1 E_H, zero columns in padding
    factor: Array  # (h, h) lower Cholesky factor of W^T W (identity in padding)


def _whitened_units(L: Array, d: Array, index: Array, valid: Array) -> Array:
    """``W`` (K, n): ``L_s^-1 e_j = L^-1 e_j / d_j`` for the n entries ``index`` (zero if not valid)."""
    units = (jnp.arange(d.shape[0])[:, None] == index[None, :]) & valid[None, :]
    return lower_solve(L, jnp.where(units, 1.0 / d[index][None, :], 0.0))


def _held(L: Array, d: Array, keep: Array, layout: HeldLayout) -> _Held | None:
    """The held entries' whitened columns (None when there are none)."""
    capacity, start = layout
    if capacity == 0:
        return None
    index = jnp.argsort(keep, stable=True)[:capacity]
    valid = jnp.arange(capacity) < jnp.sum(~keep)
    W = jnp.zeros((L.shape[0], capacity), L.dtype).at[start:].set(
        _whitened_units(L[start:, start:], d[start:], index - start, valid))
    pair = valid[:, None] & valid[None, :]
    gram = jnp.where(pair, W.T @ W, jnp.eye(capacity, dtype=L.dtype))
    return _Held(W, lax.linalg.cholesky(gram, symmetrize_input=False))


def _project(held: _Held | None, Y: Array) -> Array:
    """``P Y``: Y (K,) or (K, n) with its components along the held columns removed."""
    if held is None:
        return Y
    return Y - held.W @ cho_solve((held.factor, True), held.W.T @ Y)


class _Rounds(NamedTuple):
    cands: slots.Candidates  # G = W^T W, u = W^T v' on the candidate bounds
    W: Array  # (K, m) P L_s^-1 E_C, zero columns in empty slots
    multipliers: slots.Slots
    x: Array  # (K,) the solution for the current candidate set, scaled (s / d)


def _grown(state: _Rounds, m: int) -> _Rounds:
    return _Rounds(
        slots.grown_candidates(state.cands, m), jnp.pad(state.W, ((0, 0), (0, m - state.W.shape[1]))),
        slots.grown(state.multipliers, m), state.x,
    )


def _refined(
    Q: Array, q: Array, L: Array, held: _Held | None, W: Array, factor: Array, active: Array,
    s: Array, free: Array,
) -> Array:
    """One step of iterative refinement of s on the free set F: ``s + Q_FF^-1 (q - Q s)_F``,
    the solve done as the rounds do it, projecting out the held and active columns (``factor``:
    Cholesky factor of ``G_AA``, padded with the identity)."""
    residual = jnp.where(free, q - 0.5 * (Q @ s + s @ Q), 0.0)
    t = _project(held, lower_solve(L, residual))
    t = t - W @ jnp.where(active, cho_solve((factor, True), jnp.where(active, W.T @ t, 0.0)), 0.0)
    return s + lower_solve(L, t, transpose=True)


def dual_active_set(
    Q: Array, q: Array, L: Array, d: Array, keep: Array, held_layout: HeldLayout
) -> tuple[Array, Array, Array, Array]:
    """Solve ``min 1/2 s^T Q s - q^T s``, s >= 0 on keep, 0 off it, given ``Q = L L^T``.

    Q (K, K), q (K,), L (K, K) its lower Cholesky factor, d (K,) = diag(Q)^-1/2, keep (K,) bool
    with False entries as ``held_layout`` (static) says. Returns ``(s, free, iterations,
    converged)``: s (K,) in the units of q, the final free set (K,) bool, the exchanges of the
    active set and whether no sign violation remains.
    """
    k = q.shape[0]
    held = _held(L, d, keep, held_layout)
    v = _project(held, lower_solve(L, q))

    def solution(W: Array, lam: Array) -> Array:
        return lower_solve(L, v + W @ lam, transpose=True) / d

    def wanted(state: _Rounds) -> tuple[Array, Array]:
        tolerance = SIGN_TOLERANCE * jnp.max(jnp.where(keep, jnp.abs(state.x), 0.0))
        return keep & ~state.cands.member & (state.x < -tolerance), tolerance

    def settled(state: _Rounds, m: int) -> Array:
        return state.multipliers.done & (state.multipliers.steps < STEPS_PER_SLOT * m)

    def grown_set(state: _Rounds, want: Array, chunk: int) -> tuple[slots.Candidates, Array]:
        entries, valid, new = slots.chosen(state.cands, state.x, want, chunk)
        W_new = _project(held, _whitened_units(L, d, entries, valid))
        W = state.W.at[:, new].set(W_new, mode="drop")
        return slots.with_candidates(state.cands, entries, valid, new, W.T @ W_new, W_new.T @ v), W

    def round_(state: _Rounds, m: int) -> _Rounds:
        want, tolerance = wanted(state)
        # The smallest chunk (triangular solve) that takes every violated bound, up to the largest.
        chunks = sorted({min(c, m) for c in CHUNKS})
        index = jnp.searchsorted(jnp.asarray(chunks), jnp.minimum(jnp.sum(want), chunks[-1]))
        cands, W = lax.switch(index, [lambda c=c: grown_set(state, want, c) for c in chunks])
        multipliers = slots.lawson_hanson(
            cands.G, cands.u, cands.count, state.multipliers, tolerance, STEPS_PER_SLOT * m
        )
        return _Rounds(cands, W, multipliers, solution(W, multipliers.lam))

    def rounds(state: _Rounds, m: int) -> _Rounds:
        def unfinished(state: _Rounds) -> Array:
            room = state.cands.count < m
            return jnp.any(wanted(state)[0]) & room & settled(state, m) & jnp.all(jnp.isfinite(state.x))

        return lax.while_loop(unfinished, lambda state: round_(state, m), state)

    def finish(state: _Rounds, m: int) -> tuple[Array, Array, Array, Array]:
        active = state.multipliers.active
        free = keep & ~slots.on_entries(state.cands, active, k)
        # The final multipliers from a fresh factorization of G_AA (the updated inverse drifts),
        # then one step of iterative refinement in the primal.
        factor = slots.active_factor(state.cands.G, active)
        lam = -jnp.where(active, cho_solve((factor, True), jnp.where(active, state.cands.u, 0.0)), 0.0)
        s = jnp.where(free, d * solution(state.W, lam), 0.0)
        s = _refined(Q, q, L, held, state.W, factor, active, s, free)
        s = jnp.where(free, jnp.maximum(s, 0.0), 0.0)
        converged = (
            (jnp.sum(~keep) <= held_layout.capacity)
            & ~jnp.any(wanted(state)[0])
            & settled(state, m)
            & jnp.all(jnp.isfinite(s))
        )
        return s, free, state.multipliers.steps, converged

    def switch_to_primal(state: _Rounds) -> tuple[Array, Array, Array, Array]:
        """The primal method, started from the entries positive in the current x."""
        s, free, steps, converged = primal_active_set(Q, q, d, keep, keep & (state.x > 0))
        return s, free, state.multipliers.steps + steps, converged

    def run(state: _Rounds, stages: list[int]) -> tuple[Array, Array, Array, Array]:
        """Rounds in ``stages[0]`` slots, continued with more slots (or the primal method) when
        they overflow."""
        m = stages[0]
        state = rounds(state, m)
        if len(stages) == 1:
            return finish(state, m)
        overflowing = jnp.any(wanted(state)[0]) & settled(state, m)
        more = lambda: run(_grown(state, stages[1]), stages[1:])  # noqa: E731
        if m == PRIMAL_SWITCH:
            # Bounds expected in the end: the active ones and the still violated ones; the
            # primal method's slots must hold the entries positive now (its start).
            bounds = jnp.sum(state.multipliers.active) + jnp.sum(wanted(state)[0])
            fits = primal_fits(jnp.sum(keep & (state.x > 0)))
            primal = overflowing & fits & (bounds > PRIMAL_SHARE * jnp.sum(keep))
            return lax.cond(
                primal,
                lambda: switch_to_primal(state),
                lambda: lax.cond(overflowing, more, lambda: finish(state, m)),
            )
        return lax.cond(overflowing, more, lambda: finish(state, m))

    stages = sorted({min(c, k) for c in CAPACITIES})
    m = stages[0]
    start = _Rounds(
        slots.no_candidates(k, m, q.dtype), jnp.zeros((k, m), q.dtype), slots.empty(m, q.dtype),
        jnp.zeros(k, q.dtype),
    )
    return run(start._replace(x=solution(start.W, start.multipliers.lam)), stages)
