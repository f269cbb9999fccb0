"""Each path of the solver gives scipy's answer: the dual active-set method (few active bounds),
its switch to the primal method (most bounds active), the general fallback (forced by a tiny
slot capacity), and a keep mask that is traced (its held count unknown when compiling)."""

from typing import NamedTuple

import jax
import numpy as np
import pytest
from nnls_oracle import assert_matches_scipy

import nnls
import nnls.dual_active_set
import nnls.forward
from nnls.problems import random_problem


class Spy(NamedTuple):
    """What a spied-on function did: ``traced`` when it was put into a program (trace time),
    ``ran`` each time its result was computed (run time, on the host)."""

    traced: list
    ran: list


@pytest.fixture
def spy(monkeypatch):
    """``spy(module, name) -> Spy`` of the named function. ``lax.cond`` traces both branches, so
    only ``ran`` tells which branch was taken; and a program compiled before the patch (jax's
    caches, keyed by shape) would hold no spy at all: the caches are cleared, before so that the
    test's program is traced with the spy, after so that no later test runs a patched program."""

    def install(module, name: str) -> Spy:
        record = Spy([], [])
        original = getattr(module, name)

        def spied(*args, **kwargs):
            record.traced.append(name)
            result = original(*args, **kwargs)
            jax.debug.callback(lambda: record.ran.append(name))
            return result

        monkeypatch.setattr(module, name, spied)
        return record

    jax.clear_caches()
    yield install
    jax.clear_caches()


def shifted_problem(k: int, shift: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A random problem whose q is pushed down by ``shift`` (in units of sqrt(diag Q)): the larger
    the shift, the more bounds are active."""
    Q, q = random_problem(np.random.default_rng(seed), k, 6.0)
    return Q, q - shift * np.sqrt(np.diag(Q)) * np.mean(np.abs(q) / np.sqrt(np.diag(Q)))


def test_most_bounds_active_switches_to_the_primal_method(spy):
    Q, q = shifted_problem(600, 0.5)
    primal = spy(nnls.dual_active_set, "primal_active_set")
    s, info = jax.jit(nnls.solve_with_info)(Q, q)
    jax.effects_barrier()
    assert primal.traced and primal.ran == ["primal_active_set"]
    assert bool(info.converged) and np.sum(np.asarray(s) == 0) > 400
    assert_matches_scipy(Q, q, s)


def test_few_bounds_active_stay_dual(spy):
    Q, q = shifted_problem(300, 0.0)
    primal = spy(nnls.dual_active_set, "primal_active_set")
    s, info = jax.jit(nnls.solve_with_info)(Q, q)
    jax.effects_barrier()
    assert primal.traced and primal.ran == [] and bool(info.converged)
    assert_matches_scipy(Q, q, s)


@pytest.mark.parametrize("with_factor", [False, True])
def test_overflowing_slots_fall_back_to_the_general_solver(monkeypatch, spy, with_factor):
    Q, q = shifted_problem(23, 0.3)
    keep = np.arange(23) % 5 != 2
    monkeypatch.setattr(nnls.dual_active_set, "CAPACITIES", (2,))
    general = spy(nnls.forward, "_general")
    factor = np.linalg.cholesky(Q) if with_factor else None
    s, info = nnls.solve_with_info(Q, q, keep=keep, cholesky=factor)
    jax.effects_barrier()
    assert general.traced and general.ran == ["_general"] and bool(info.converged)
    assert_matches_scipy(Q, q, s, keep)


def test_traced_keep():
    Q, q = shifted_problem(40, 0.2)
    keep = np.random.default_rng(2).random(40) < 0.8
    s, info = jax.jit(lambda Q, q, keep: nnls.solve_with_info(Q, q, keep=keep))(Q, q, keep)
    assert bool(info.converged)
    assert_matches_scipy(Q, q, s, keep)
