"""Lawson & Hanson's method for a small dense QP held in a fixed number of slots.

``min 1/2 lam^T G lam + u^T lam`` over ``lam >= 0``, G (m, m) symmetric positive definite on the
filled slots (a prefix of ``count``): the multiplier problem of ``dual_active_set.py`` and the
restricted primal problem of ``primal_active_set.py``. The active set A (the slots allowed to be
non-zero) changes by blocks, and ``G_AA^-1`` is kept current by low-rank updates (bordering when
slots enter, Schur downdates when they leave), so an exchange costs a few passes over an m x m
matrix instead of a factorization. Updates drift on ill-conditioned problems: z is refined by a
sweep with the updated inverse when needed, and the inverse recomputed when that does not suffice.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve

# Most slots entering or leaving A per exchange.
ENTERING = 4
LEAVING = 8
# The inverse is recomputed when x on A (zero in exact arithmetic) exceeds this many sign
# tolerances after a refinement sweep.
REFRESH = 1e7


class Slots(NamedTuple):
    """The state of the method; A is called ``active`` (the multipliers' free set)."""

    lam: Array  # (m,) multipliers, >= 0, zero off the active set
    active: Array  # (m,) bool active set A
    inverse: Array  # (m, m) (G_AA)^-1, zero off A x A
    z: Array  # (m,) -(G_AA)^-1 u_A: the multipliers if A were optimal
    steps: Array  # () int32 exchanges so far
    done: Array  # () bool the multiplier problem on the filled slots is solved
    fresh: Array  # () bool the inverse was just recomputed from G


def _solved(inverse: Array, active: Array, u: Array) -> Array:
    return -jnp.where(active, inverse @ u, 0.0)


def _enter(state: Slots, G: Array, u: Array, eligible: Array, x: Array) -> Slots:
    """Accept z as the multipliers; the (up to ENTERING) most negative eligible slots join A.

    Block bordering: with B = M G_AJ and S = G_JJ - G_AJ^T B, the new inverse is
    ``M + E S^-1 E^T`` with ``E = B - E_J``.
    """
    m = x.shape[0]
    entering = min(ENTERING, m)
    negative, J = lax.top_k(jnp.where(eligible, -x, -jnp.inf), entering)
    valid = negative > -jnp.inf
    rows = G[J]  # (e, m): G is symmetric, rows gather contiguously
    G_AJ = jnp.where(state.active[:, None] & valid[None, :], rows.T, 0.0)
    B = state.inverse @ G_AJ
    pair = valid[:, None] & valid[None, :]
    S = jnp.where(pair, rows[:, J] - G_AJ.T @ B, jnp.eye(entering, dtype=x.dtype))
    factor = lax.linalg.cholesky(S, symmetrize_input=False)
    E = jnp.where(valid[None, :], B - (jnp.arange(m)[:, None] == J[None, :]), 0.0)
    inverse = state.inverse + E @ cho_solve((factor, True), E.T)
    active = state.active.at[jnp.where(valid, J, m)].set(True, mode="drop")
    return state._replace(lam=state.z, active=active, inverse=inverse, z=_solved(inverse, active, u))


def refreshed(state: Slots, G: Array, u: Array) -> Slots:
    """The inverse recomputed from a Cholesky factorization of G_AA (when updates drifted)."""
    pair = state.active[:, None] & state.active[None, :]
    identity = jnp.eye(u.shape[0], dtype=G.dtype)
    inverse = jnp.where(pair, cho_solve((active_factor(G, state.active), True), identity), 0.0)
    return state._replace(inverse=inverse, z=_solved(inverse, state.active, u))


def _drop(state: Slots, u: Array, blocking: Array) -> Slots:
    """Move the multipliers towards z until the first blocking ones reach 0, and drop them.

    Up to ``LEAVING`` bounds that reach 0 together leave at once (block downdate of the
    inverse: ``M - M_:D (M_DD)^-1 M_D:``); often they are bounds that just entered with z <= 0.
    """
    m = u.shape[0]
    ratios = jnp.where(blocking, state.lam / jnp.where(blocking, state.lam - state.z, 1.0), jnp.inf)
    alpha = jnp.clip(jnp.min(ratios), 0.0, 1.0)
    leaving = min(LEAVING, m)
    negative, D = lax.top_k(-ratios, leaving)
    valid = (-negative <= alpha) & blocking[D]
    valid = valid.at[0].set(True)  # the first blocking bound always leaves
    rows = jnp.where(valid[:, None], state.inverse[D], 0.0)  # (l, m) = M_D: (M symmetric)
    pair = valid[:, None] & valid[None, :]
    block = jnp.where(pair, rows[:, D], jnp.eye(leaving, dtype=u.dtype))
    factor = lax.linalg.cholesky(block, symmetrize_input=False)
    out = jnp.zeros(m, bool).at[jnp.where(valid, D, m)].set(True, mode="drop")
    inverse = state.inverse - rows.T @ cho_solve((factor, True), rows)
    inverse = jnp.where(out[:, None] | out[None, :], 0.0, inverse)
    active = state.active & ~out
    lam = jnp.where(active, jnp.maximum(state.lam + alpha * (state.z - state.lam), 0.0), 0.0)
    return state._replace(lam=lam, active=active, inverse=inverse, z=_solved(inverse, active, u))


def lawson_hanson(
    G: Array, u: Array, count: Array, state: Slots, tolerance: Array, max_steps: int
) -> Slots:
    """Exact solve of the multiplier problem on the filled slots, from feasible multipliers.

    While some slot's x (= u + G lam) is below -tolerance, the most negative join A; when the
    multipliers z of the new A are not all positive, step towards them and drop the blocking
    one. The objective never increases. z is refined by a sweep with the updated inverse when
    x on A (zero in exact arithmetic) exceeds the tolerance, and the inverse recomputed when
    that does not suffice.
    """
    filled = jnp.arange(u.shape[0]) < count

    def refined(state: Slots, x: Array) -> tuple[Array, Array]:
        """One sweep of iterative refinement of z (x on A should be 0), and the new x."""
        z = state.z - jnp.where(state.active, state.inverse @ jnp.where(state.active, x, 0.0), 0.0)
        return z, u + G @ z

    def step(state: Slots) -> Slots:
        x = u + G @ state.z
        drift = jnp.max(jnp.where(state.active, jnp.abs(x), 0.0))
        z, x = lax.cond(drift <= tolerance, lambda: (state.z, x), lambda: refined(state, x))
        state = state._replace(z=z)
        blocking = state.active & (z <= 0.0)
        drift = jnp.max(jnp.where(state.active, jnp.abs(x), 0.0))
        refresh = ~state.fresh & ~(drift <= REFRESH * tolerance)
        eligible = filled & ~state.active & (x < -tolerance)
        finished = ~refresh & ~jnp.any(blocking) & ~jnp.any(eligible)
        state = lax.cond(
            refresh,
            lambda: refreshed(state, G, u),
            lambda: lax.cond(
                jnp.any(blocking),
                lambda: _drop(state, u, blocking),
                lambda: lax.cond(finished, lambda: state, lambda: _enter(state, G, u, eligible, x)),
            ),
        )
        return state._replace(
            steps=state.steps + jnp.where(finished, 0, 1).astype(jnp.int32), done=finished, fresh=refresh
        )

    def unfinished(state: Slots) -> Array:
        return ~state.done & (state.steps < max_steps) & ~(state.fresh & ~jnp.all(jnp.isfinite(state.z)))

    end = lax.while_loop(unfinished, step, state._replace(done=jnp.array(False), fresh=jnp.array(False)))
    return end._replace(lam=end.z)


def empty(m: int, dtype) -> Slots:
    """No slot active, nothing to do."""
    zeros = jnp.zeros(m, dtype)
    return Slots(
        zeros, jnp.zeros(m, bool), jnp.zeros((m, m), dtype), zeros,
        jnp.array(0, jnp.int32), jnp.array(True), jnp.array(False),
    )


def grown(state: Slots, m: int) -> Slots:
    """The same state in m slots (the new ones empty)."""
    extra = m - state.lam.shape[0]
    vector = lambda a: jnp.pad(a, (0, extra))  # noqa: E731
    return state._replace(
        lam=vector(state.lam), active=vector(state.active), z=vector(state.z),
        inverse=jnp.pad(state.inverse, ((0, extra), (0, extra))),
    )


def active_factor(G: Array, active: Array) -> Array:
    """Lower Cholesky factor of ``G_AA``, padded with the identity off A."""
    pair = active[:, None] & active[None, :]
    padded = jnp.where(pair, G, jnp.eye(G.shape[0], dtype=G.dtype))
    return lax.linalg.cholesky(padded, symmetrize_input=False)


class Candidates(NamedTuple):
    """The entries given slots, in order (a prefix of ``count``), with G and u on them."""

    index: Array  # (m,) int32 entry of each slot (0 in empty slots)
    count: Array  # () int32 filled slots
    member: Array  # (K,) bool the entry has a slot
    G: Array  # (m, m)
    u: Array  # (m,)


def no_candidates(k: int, m: int, dtype) -> Candidates:
    """m empty slots for entries of a (K,) problem."""
    return Candidates(
        jnp.zeros(m, jnp.int32), jnp.array(0, jnp.int32), jnp.zeros(k, bool),
        jnp.zeros((m, m), dtype), jnp.zeros(m, dtype),
    )


def chosen(cands: Candidates, score: Array, wanted: Array, n: int) -> tuple[Array, Array, Array]:
    """The (up to n) ``wanted`` entries of lowest ``score`` (K,) that fit in the free slots:
    ``(entries (n,), valid (n,), slots (n,))``, invalid ones with slot m (out of bounds)."""
    m = cands.index.shape[0]
    negative, entries = lax.top_k(jnp.where(wanted, -score, -jnp.inf), n)
    valid = (negative > -jnp.inf) & (jnp.arange(n) < m - cands.count)
    return entries, valid, jnp.where(valid, cands.count + jnp.arange(n), m)


def with_candidates(
    cands: Candidates, entries: Array, valid: Array, slots: Array, G_new: Array, u_new: Array
) -> Candidates:
    """Candidates after giving ``slots`` to ``entries``; G_new (m, n) = G[:, slots] (its rows at
    the new slots included), u_new (n,)."""
    k = cands.member.shape[0]
    return Candidates(
        index=cands.index.at[slots].set(entries, mode="drop"),
        count=cands.count + jnp.sum(valid, dtype=jnp.int32),
        member=cands.member.at[jnp.where(valid, entries, k)].set(True, mode="drop"),
        G=cands.G.at[:, slots].set(G_new, mode="drop").at[slots, :].set(G_new.T, mode="drop"),
        u=cands.u.at[slots].set(u_new, mode="drop"),
    )


def grown_candidates(cands: Candidates, m: int) -> Candidates:
    """The same candidates in m slots (the new ones empty)."""
    extra = m - cands.u.shape[0]
    return cands._replace(
        index=jnp.pad(cands.index, (0, extra)), u=jnp.pad(cands.u, (0, extra)),
        G=jnp.pad(cands.G, ((0, extra), (0, extra))),
    )


def on_entries(cands: Candidates, slot_values: Array, k: int) -> Array:
    """(K,) array with ``slot_values`` (m,) at the slots' entries (valid slots only), else 0."""
    filled = jnp.arange(cands.u.shape[0]) < cands.count
    entries = jnp.where(filled, cands.index, k)
    return jnp.zeros(k, slot_values.dtype).at[entries].set(slot_values, mode="drop")
