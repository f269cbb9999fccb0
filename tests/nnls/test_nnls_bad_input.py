"""Bad input: a clear ValueError at trace time, or a NaN result flagged in Info; never a hang."""

import jax
import numpy as np
import pytest

import nnls
from nnls.problems import random_problem


@pytest.mark.parametrize(
    ("Q", "q", "keep", "message"),
    [
        (np.eye(3)[:2], np.ones(3), None, "square"),
        (np.eye(3), np.ones(4), None, "q must have shape"),
        (np.eye(3), np.ones((3, 1)), None, "q must have shape"),
        (np.eye(3), np.ones(3), np.ones(4, bool), "keep"),
        (np.eye(3), np.ones(3), np.ones(3), "keep"),
    ],
)
def test_shape_errors_raise_at_trace_time(Q, q, keep, message):
    with pytest.raises(ValueError, match=message):
        jax.jit(lambda Q, q: nnls.solve(Q, q, keep=keep)).lower(Q, q)


def test_cholesky_shape_error():
    with pytest.raises(ValueError, match="cholesky"):
        nnls.solve(np.eye(3), np.ones(3), cholesky=np.eye(2))


@pytest.mark.parametrize("where", ["Q", "q"])
def test_nan_input_is_flagged(where):
    Q, q = random_problem(np.random.default_rng(0), 10, 3.0)
    if where == "Q":
        Q[2, 5] = Q[5, 2] = np.nan
    else:
        q[4] = np.nan
    s, info = jax.jit(nnls.solve_with_info)(Q, q)
    assert not bool(info.converged)
    assert np.any(np.isnan(s))


def test_indefinite_matrix_is_flagged():
    Q = np.diag([1.0, -1.0, 2.0])
    s, info = nnls.solve_with_info(Q, np.ones(3))
    assert not bool(info.converged)
