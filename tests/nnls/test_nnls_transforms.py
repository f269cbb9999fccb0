"""jit equals eager, vmap equals a loop, grad equals central differences, keep is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nnls_oracle import assert_matches_scipy

import nnls
from nnls.problems import mge_problem, random_problem


def batch(seeds, k=20, log10_cond=4.0):
    problems = [random_problem(np.random.default_rng(seed), k, log10_cond) for seed in seeds]
    return np.stack([p[0] for p in problems]), np.stack([p[1] for p in problems])


def test_jit_equals_eager():
    """``solve`` compiles itself; with jit disabled its operations run one by one instead."""
    Q, q = mge_problem(np.random.default_rng(1))
    jitted = np.asarray(jax.jit(nnls.solve)(Q, q))
    with jax.disable_jit():
        eager = np.asarray(nnls.solve(Q, q))
    assert np.sum(eager > 0) > 0
    np.testing.assert_allclose(eager, jitted, rtol=1e-12, atol=1e-12 * np.abs(jitted).max())


@pytest.mark.parametrize("with_factor", [False, True])
def test_vmap_equals_loop(with_factor):
    Qs, qs = batch(range(5))
    factors = np.linalg.cholesky(Qs) if with_factor else None
    keep = np.arange(20) % 7 != 3

    def one(Q, q, L):
        return nnls.solve_with_info(Q, q, keep=keep, cholesky=L)

    batched_s, batched_info = jax.jit(jax.vmap(one))(Qs, qs, factors)
    for i in range(len(qs)):
        s, info = jax.jit(one)(Qs[i], qs[i], None if factors is None else factors[i])
        np.testing.assert_allclose(batched_s[i], s, rtol=1e-12, atol=1e-14)
        assert int(batched_info.iterations[i]) == int(info.iterations)
        assert bool(batched_info.converged[i])


def test_keep_mask_respected_exactly():
    Q, q = random_problem(np.random.default_rng(3), 30, 6.0)
    keep = np.random.default_rng(4).random(30) < 0.6
    q = q + 5.0 * np.sqrt(np.diag(Q))  # held entries would be positive if they were free
    for factor in (None, np.linalg.cholesky(Q)):
        s = np.asarray(nnls.solve(Q, q, keep=keep, cholesky=factor))
        assert np.all(s[~keep] == 0.0)
        assert_matches_scipy(Q, q, s, keep)


def _loss(Q, q, weights):
    return jnp.sum(weights * nnls.solve(Q, q)) + 0.5 * jnp.sum(nnls.solve(Q, q) ** 2)


@pytest.mark.parametrize("seed", range(3))
def test_grad_equals_central_differences(seed):
    rng = np.random.default_rng(seed)
    Q, q = random_problem(rng, 12, 2.0)
    weights = rng.normal(size=12)
    dQ, dq = jax.grad(_loss, argnums=(0, 1))(Q, q, weights)
    s = np.asarray(nnls.solve(Q, q))
    assert 0 < np.sum(s > 0) < 12  # both free and active entries
    h = 1e-6
    for _ in range(6):
        direction_q = rng.normal(size=12)
        # A single-entry perturbation of Q: the solver reads the symmetric part of Q.
        direction_Q = np.zeros((12, 12))
        direction_Q[rng.integers(12), rng.integers(12)] = 1.0
        for dQ_dir, dq_dir, expected in (
            (0 * direction_Q, direction_q, dq @ direction_q),
            (direction_Q, 0 * direction_q, np.sum(dQ * direction_Q)),
        ):
            plus = _loss(Q + h * dQ_dir, q + h * dq_dir, weights)
            minus = _loss(Q - h * dQ_dir, q - h * dq_dir, weights)
            np.testing.assert_allclose((plus - minus) / (2 * h), expected, rtol=1e-6, atol=1e-8)


def test_grad_under_vmap_and_with_factor_is_finite_and_consistent():
    Qs, qs = batch(range(3), k=16)

    def loss(Q, q, L):
        return jnp.sum(nnls.solve(Q, q, cholesky=L) ** 2)

    grads = jax.vmap(jax.grad(loss, argnums=(0, 1)))(Qs, qs, np.linalg.cholesky(Qs))
    for i in range(3):
        single = jax.grad(loss, argnums=(0, 1))(Qs[i], qs[i], None)
        np.testing.assert_allclose(grads[0][i], single[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(grads[1][i], single[1], rtol=1e-9, atol=1e-12)


def test_grad_finite_on_ill_conditioned_mge():
    Q, q = mge_problem(np.random.default_rng(0))
    dQ, dq = jax.grad(lambda Q, q: jnp.sum(nnls.solve(Q, q)), argnums=(0, 1))(Q, q)
    assert np.all(np.isfinite(dQ)) and np.all(np.isfinite(dq))


def test_grad_with_held_entries_and_factor_equals_central_differences():
    """The likelihood's call: held entries and the caller's factor (recomputed from Q)."""
    rng = np.random.default_rng(5)
    Q, q = random_problem(rng, 16, 3.0)
    keep = np.arange(16) % 4 != 1
    weights = rng.normal(size=16)

    def loss(Q, q):
        s = nnls.solve(Q, q, keep=keep, cholesky=jnp.linalg.cholesky(Q))
        return jnp.sum(weights * s) + 0.5 * jnp.sum(s**2)

    dQ, dq = jax.grad(loss, argnums=(0, 1))(Q, q)
    s = np.asarray(nnls.solve(Q, q, keep=keep))
    assert 0 < np.sum(keep & (s > 0)) < np.sum(keep)  # both free and active kept entries
    h = 1e-6
    for _ in range(4):
        direction = rng.normal(size=16)
        numeric = (loss(Q, q + h * direction) - loss(Q, q - h * direction)) / (2 * h)
        np.testing.assert_allclose(numeric, dq @ direction, rtol=1e-6, atol=1e-8)
        i, j = rng.integers(16, size=2)
        bump = np.zeros((16, 16))
        bump[i, j] = bump[j, i] = 1.0  # symmetric, so that the Cholesky factor stays valid
        numeric = (loss(Q + h * bump, q) - loss(Q - h * bump, q)) / (2 * h)
        np.testing.assert_allclose(numeric, np.sum(dQ * bump), rtol=1e-6, atol=1e-8)


def test_held_entries_ordered_last_give_the_solution_of_any_order():
    Q, q = random_problem(np.random.default_rng(5), 40, 6.0)
    keep = np.random.default_rng(6).random(40) < 0.7
    order = np.concatenate([np.flatnonzero(keep), np.flatnonzero(~keep)])
    Q_last, q_last, keep_last = Q[np.ix_(order, order)], q[order], keep[order]
    expected = np.asarray(nnls.solve(Q, q, keep=keep))
    for factor in (None, np.linalg.cholesky(Q_last)):
        s = np.asarray(nnls.solve(Q_last, q_last, keep=keep_last, cholesky=factor))
        assert_matches_scipy(Q_last, q_last, s, keep_last)
        np.testing.assert_allclose(s[np.argsort(order)], expected, rtol=1e-9,
                                   atol=1e-12 * np.abs(expected).max())
