"""Benchmark of ``nnls.solve`` (and jaxnnls 1.0.1 and scipy when importable): a markdown table.

Problems are the real normal equations of the likelihood (``likelihood.build_model`` on the
embedded dataset): the ``(F + H, D, keep)`` handed to the solver, captured at parameter vectors
near the truth (the truth plus 0.01 Gaussian noise, regularization coefficient at its reference
value) and drawn from the model's priors. Kinds: ``mge`` (K=80, 60 lens-light + 20 source
Gaussians), ``rectangular`` (35 x 35 adaptive mesh + 60 Gaussians, K=1285, edge ring held at
zero) and ``delaunay``; 32 parameter vectors (lanes) per family. A first table summarizes the
problems: active bounds at the solution, held entries, condition numbers, and what our solver
reports (exchanges, KKT residual, converged).

Timing: medians over repetitions, each measurement between two of one jitted Cholesky of a
lane's Q (so that both see the same load on a shared machine). "x Cholesky" divides the time
per solve by that Cholesky's; "vmap / single" divides a batch's time by that of a loop of single
solves of the same lanes, the two run in turn (lanes differ a lot, and the machine's load drifts
between measurements taken apart); the batch-1 row gives lane 0 alone and, last column, the
median over all lanes alone (x Cholesky).
"ours, caller's factor" is the likelihood's path: the caller factors Q (it needs ln det Q) and
passes the factor, which is not timed; "ours" factors Q itself. One thread (as ``XLA_FLAGS``
and the BLAS variables below set), so that ratios mean the same on a shared machine.

Run from the repository root: ``python benchmarks/nnls.py`` (a few minutes; building the
problems evaluates the likelihood at each parameter vector). ``--smoke`` runs in seconds (the tests
do, tests/benchmarks/): the ``mge`` kind at tiny sizes, 2 lanes, batches 1 and 2, one repetition;
it checks that the script runs, its numbers mean little.
"""

import argparse
import functools
import importlib.util
import os
import sys
import time
from pathlib import Path
from unittest import mock

# Run as a script, this file's folder heads sys.path and its name would shadow the package.
sys.path[:] = [entry for entry in sys.path
               if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from service.environment import set_default_environment  # noqa: E402

# The service's XLA and OpenBLAS settings, and one thread for the other BLAS libraries too.
set_default_environment()
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import nnls  # noqa: E402
from likelihood import ModelSettings, build_model, default_dataset, default_truth  # noqa: E402

BATCHES = (1, 3, 8, 32)
LANES = max(BATCHES)
KINDS = ("mge", "rectangular", "delaunay")
# --smoke: the script's every path in seconds (each solver's compilation costs 3-6 s).
SMOKE = False
SMOKE_SETTINGS = ModelSettings(lens_gaussians=4, source_gaussians=3, mesh_shape=(8, 8),
                               delaunay_overlay=(9, 9))
SMOKE_MASK_RADIUS = 2.0


def parameter_vectors(model, variant: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, P): near the truth, or drawn from the priors."""
    names = model.parameter_names
    if variant == "near-truth":
        truth = default_truth()
        centre = np.array([truth.get(name, reference) for name, reference
                           in zip(names, model.reference_parameters, strict=True)])
        noise = np.where([name.endswith("coefficient") for name in names], 0.0, 0.01)
        return centre + noise * rng.standard_normal((count, len(names)))
    units = rng.random((count, len(names)))
    return np.array([[prior.from_unit(u) for prior, u in zip(model.priors, row, strict=True)]
                     for row in units])


def captured_systems(model, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(Q, q)`` the likelihood hands to ``nnls.solve_with_info`` at each theta, and the
    ``keep`` it passes (static, in the likelihood's own column order, which puts held columns
    last): the call is replaced by a stub that sends its arguments to the host (and returns
    zeros)."""
    seen, kept = [], []

    def record(Q, q, *, keep, cholesky):
        kept.append(np.ones(q.shape[-1], bool) if keep is None else np.asarray(keep))
        jax.debug.callback(lambda Q, q: seen.append((np.asarray(Q), np.asarray(q))), Q, q)
        return jnp.zeros_like(q), nnls.Info(jnp.int32(0), jnp.zeros(()), jnp.array(True))

    with mock.patch.object(nnls, "solve_with_info", record):
        evaluate = jax.jit(model.log_evidence)
        for theta in thetas:
            jax.block_until_ready(evaluate(jnp.asarray(theta)))
    return np.stack([Q for Q, _ in seen]), np.stack([q for _, q in seen]), kept[0]


def families(kinds) -> dict:
    """{name: (Q (LANES, K, K), q (LANES, K), keep (K,))}."""
    rng = np.random.default_rng(0)
    found = {}
    for kind in kinds:
        model = (build_model(default_dataset(SMOKE_MASK_RADIUS), kind, SMOKE_SETTINGS) if SMOKE
                 else build_model(default_dataset(), kind))
        for variant in ("near-truth", "prior-draw"):
            Q, q, keep = captured_systems(model, parameter_vectors(model, variant, LANES, rng))
            found[f"{kind} K={q.shape[1]} {variant}"] = (Q, q, keep)
    return found


CHOLESKY = jax.jit(jnp.linalg.cholesky)


def paired_seconds(functions, cholesky_of: np.ndarray, repetitions: int) -> tuple[list[float], float]:
    """Median seconds of each of ``functions()``, run in turn for ``repetitions`` rounds, and of
    one jitted Cholesky of ``cholesky_of`` timed just before and just after (the mean of the two
    medians), so that all see the same load on a shared machine."""
    def medians(functions, repetitions):
        times = [[] for _ in functions]
        for _ in range(repetitions):
            for function, seconds in zip(functions, times, strict=True):
                start = time.perf_counter()
                jax.block_until_ready(function())
                seconds.append(time.perf_counter() - start)
        return [float(np.median(seconds)) for seconds in times]

    for function in functions:  # compile and warm up
        jax.block_until_ready(function())
    cholesky = lambda: CHOLESKY(cholesky_of)  # noqa: E731
    jax.block_until_ready(cholesky())
    before = medians([cholesky], 5)[0]
    seconds = medians(functions, repetitions)
    return seconds, 0.5 * (before + medians([cholesky], 5)[0])


def solvers(keep: np.ndarray) -> dict:
    """{label: function of (Q, q, L) for one lane}; keep is closed over (static, as in the
    likelihood). The same functions for the same keep, so that families share compilations."""
    return _solvers(np.asarray(keep, bool).tobytes())


@functools.cache
def _solvers(keep_bytes: bytes) -> dict:
    keep = np.frombuffer(keep_bytes, bool)
    found = {
        "ours, caller's factor": lambda Q, q, L: nnls.solve(Q, q, keep=keep, cholesky=L),
        "ours": lambda Q, q, L: nnls.solve(Q, q, keep=keep),
    }
    if importlib.util.find_spec("jaxnnls"):
        import jaxnnls

        def jaxnnls_default(Q, q, L):
            pair = keep[:, None] & keep[None, :]
            Q = jnp.where(pair, Q, jnp.eye(Q.shape[0]))
            return jaxnnls.solve_nnls_primal(Q, jnp.where(keep, q, 0.0))

        found["jaxnnls 1.0.1"] = jaxnnls_default
    return found


@functools.cache
def jitted(solver) -> tuple:
    """(jit of one lane, jit of its vmap) of a solver, compiled once."""
    return jax.jit(solver), jax.jit(jax.vmap(solver))


def repetitions_for(k: int, batch: int, label: str) -> int:
    if SMOKE:
        return 1
    if k < 500:
        return 7
    if label.startswith("jaxnnls"):  # ~1.5 s per lane at K=1285
        return 1
    return 5 if batch < 8 else 3


def batches_for(k: int, label: str) -> tuple[int, ...]:
    return BATCHES[:3] if k > 500 and label.startswith("jaxnnls") else BATCHES


def row(*cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def solver_rows(name, label, solver, Q, q, L) -> tuple[list[str], list[float]]:
    """Rows for batches 1 (lane 0) to LANES, and the lanes' times alone (x Cholesky).
    jaxnnls at K > 500 (about a second per lane) runs 2 lanes alone and batches up to 8."""
    k = Q.shape[-1]
    single, batched = jitted(solver)
    count = 2 if k > 500 and label.startswith("jaxnnls") else LANES
    alone = [
        paired_seconds([lambda i=i: single(Q[i], q[i], L[i])], Q[i], repetitions_for(k, 1, label))
        for i in range(count)
    ]
    ratios = [seconds / cholesky for (seconds,), cholesky in alone]
    rows = [row(name, label, 1, f"{1e3 * alone[0][0][0]:.1f}", f"{ratios[0]:.2f}",
                f"median of {count} lanes alone: {np.median(ratios):.2f} x Cholesky")]
    for batch in batches_for(k, label)[1:]:
        (seconds, looped), cholesky = paired_seconds(
            [lambda b=batch: batched(Q[:b], q[:b], L[:b]),
             lambda b=batch: [single(Q[i], q[i], L[i]) for i in range(b)]],
            Q[0], repetitions_for(k, batch, label))
        rows.append(row(name, label, batch, f"{1e3 * seconds / batch:.1f}",
                        f"{seconds / batch / cholesky:.2f}", f"{seconds / looped:.2f}"))
    return rows, ratios


def scipy_rows(name, Q, q, keep) -> list[str]:
    import scipy.linalg
    import scipy.optimize

    def run(i):
        L = np.linalg.cholesky(Q[i][np.ix_(keep, keep)])
        b = scipy.linalg.solve_triangular(L, q[i][keep], lower=True)
        scipy.optimize.nnls(L.T, b, maxiter=50 * len(keep))

    lanes = range(min(8, len(Q)) if Q.shape[-1] < 500 else 2)  # a second or more a lane at K=1285
    timed = [paired_seconds([lambda i=i: run(i)], Q[i], 3 if Q.shape[-1] < 500 else 1) for i in lanes]
    ms = np.median([1e3 * seconds for (seconds,), _ in timed])
    ratio = np.median([seconds / cholesky for (seconds,), cholesky in timed])
    return [row(name, f"scipy nnls (median of {len(timed)} lanes)", 1, f"{ms:.1f}", f"{ratio:.2f}", "")]


@functools.cache
def _solve_with_info(keep_bytes: bytes):
    keep = np.frombuffer(keep_bytes, bool)
    return jax.jit(lambda Q, q, L: nnls.solve_with_info(Q, q, keep=keep, cholesky=L))


def summary_row(name, Q, q, keep) -> str:
    solve = _solve_with_info(np.asarray(keep, bool).tobytes())
    active, conditions, iterations, residuals, converged = [], [], [], [], []
    for i in range(len(q)):
        s, info = solve(Q[i], q[i], np.linalg.cholesky(Q[i]))
        active.append(int(np.sum(keep & (np.asarray(s) == 0))))
        conditions.append(np.linalg.cond(Q[i]))
        iterations.append(int(info.iterations))
        residuals.append(float(info.kkt_residual))
        converged.append(bool(info.converged))
    spread = " / ".join(str(int(a)) for a in np.percentile(active, [0, 50, 100]))
    return row(name, spread, int(np.sum(~keep)),
               f"{min(conditions):.0e} - {max(conditions):.0e}", int(np.median(iterations)),
               f"{max(residuals):.0e}", f"{sum(converged)} / {len(converged)}")


def main() -> None:
    global SMOKE, BATCHES, LANES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=None, choices=KINDS,
                        help="default: every kind (--smoke: mge)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds, not minutes: tiny models (4 + 3 Gaussians, 8 x 8 mesh, 9 x 9 "
                        "overlay, 2\" mask), 2 lanes, batches 1 and 2, one repetition; checks the "
                        "script runs (its numbers mean little)")
    arguments = parser.parse_args()
    if arguments.smoke:
        SMOKE, BATCHES, LANES = True, (1, 2), 2
    arguments.kinds = arguments.kinds or (["mge"] if SMOKE else list(KINDS))
    problems = families(arguments.kinds)

    print(row("problem", "active bounds (min / median / max)", "held", "cond(Q)", "exchanges (median)",
              "max KKT residual", "converged"))
    print(row(*["---"] * 7), flush=True)
    for name, (Q, q, keep) in problems.items():
        print(summary_row(name, Q, q, keep), flush=True)

    print()
    print(row("problem", "solver", "batch", "ms / solve", "x Cholesky", "vmap / single"))
    print(row(*["---"] * 6), flush=True)
    alone = {}
    for name, (Q, q, keep) in problems.items():
        cholesky_ms = 1e3 * paired_seconds([lambda Q=Q: CHOLESKY(Q[0])], Q[0], 7)[1]
        L = np.asarray(jax.vmap(CHOLESKY)(Q))
        rows = [row(name, "one Cholesky", 1, f"{cholesky_ms:.1f}", "1.00", "")]
        for label, solver in solvers(keep).items():
            found, ratios = solver_rows(name, label, solver, Q, q, L)
            rows += found
            alone.setdefault((name.rsplit(" ", 1)[0], label), []).extend(ratios)
        if importlib.util.find_spec("scipy"):
            rows += scipy_rows(name, Q, q, keep)
        print("\n".join(rows), flush=True)

    print()
    print(row("problems", "solver", "lanes alone", "median x Cholesky (near-truth and prior-draw)"))
    print(row(*["---"] * 4))
    for (kind, label), ratios in alone.items():
        print(row(kind, label, len(ratios), f"{np.median(ratios):.2f}"))


if __name__ == "__main__":
    main()
