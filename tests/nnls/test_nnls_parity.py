"""Parity with scipy's NNLS: objective within 1e-10 (relative) and KKT violation <= 1e-9."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nnls_oracle import assert_matches_scipy

import nnls
from nnls.problems import lens_problem, mge_problem, random_problem

solve_with_info = jax.jit(nnls.solve_with_info)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), log10_cond=st.floats(0.0, 10.0))
def test_random_k20(seed, log10_cond):
    Q, q = random_problem(np.random.default_rng(seed), 20, log10_cond)
    s, info = solve_with_info(Q, q)
    assert bool(info.converged)
    assert_matches_scipy(Q, q, s)


@pytest.mark.parametrize("seed", range(4))
def test_mge_k80(seed):
    Q, q = mge_problem(np.random.default_rng(seed))
    assert np.linalg.cond(Q) > 1e9
    s, info = solve_with_info(Q, q)
    assert bool(info.converged) and float(info.kkt_residual) <= 1e-9
    assert_matches_scipy(Q, q, s)


@pytest.mark.slow
@pytest.mark.parametrize("log10_cond", [2.0, 10.0])
def test_random_k1000(log10_cond):
    Q, q = random_problem(np.random.default_rng(7), 1000, log10_cond)
    s, info = solve_with_info(Q, q)
    assert bool(info.converged)
    assert_matches_scipy(Q, q, s)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["near_truth", "prior_draw"])
def test_lens_k1285_with_factor(variant):
    """The likelihood's path: the caller's Cholesky factor of the whole Q, edge ring held at 0."""
    Q, q, keep = lens_problem(np.random.default_rng(0), variant)
    s, info = solve_with_info(Q, q, keep=keep, cholesky=np.linalg.cholesky(Q))
    assert bool(info.converged)
    assert_matches_scipy(Q, q, s, keep)
