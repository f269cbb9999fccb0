"""Benchmark of ``nnls.solve`` (and jaxnnls 1.0.1 and scipy when importable): a markdown table.

Problems: K=80 multi-Gaussian fits and K=1285 pixelized-source lens fits (35 x 35 adaptive
rectangular mesh + 60 Gaussians, edge ring held at zero) at a near-truth lens (few active
bounds) and a prior draw (hundreds). Lanes of a batch are distinct
problems. Every time is a median over repetitions, and every ratio uses times from this run:
"x Cholesky" divides the time per solve by one jitted Cholesky of one lane's Q, "vmap / single"
divides the time per solve at that batch by the time of one solve alone.

Run from the repository root: ``python benchmarks/nnls.py``.
"""

import importlib.util
import os
import sys
import time
from pathlib import Path

# Run as a script, this file's folder heads sys.path and its name would shadow the package.
sys.path[:] = [entry for entry in sys.path
               if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import nnls  # noqa: E402
from nnls.problems import lens_problem, mge_problem  # noqa: E402

BATCHES = (1, 3, 8, 32)


def median_seconds(function, *args, repetitions: int) -> float:
    jax.block_until_ready(function(*args))  # compile and warm up
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def lanes(make, count: int, rng: np.random.Generator):
    """``count`` distinct problems from a few built ones, with q perturbed by 1 % per lane."""
    built = [make(np.random.default_rng(seed)) for seed in range(min(count, 4))]
    problems = []
    for i in range(count):
        Q, q, keep = built[i % len(built)]
        problems.append((Q, q * (1 + 0.01 * rng.normal(size=q.shape)), keep))
    return tuple(np.stack(parts) for parts in zip(*problems, strict=True))


def families():
    mge = lambda rng: (*mge_problem(rng), np.ones(80, bool))  # noqa: E731
    near = lambda rng: lens_problem(rng, "near_truth")  # noqa: E731
    prior = lambda rng: lens_problem(rng, "prior_draw")  # noqa: E731
    rng = np.random.default_rng(0)
    largest = max(BATCHES)
    return {
        "K=80 MGE": lanes(mge, largest, rng),
        "K=1285 near-truth": lanes(near, largest, rng),
        "K=1285 prior-draw": lanes(prior, largest, rng),
    }


def ours(Q, q, keep):
    return nnls.solve(Q, q, keep=keep)


def ours_with_factor(Q, q, keep):
    """The likelihood's path: it factors the whole Q (for ln det) and hands the factor over."""
    return nnls.solve(Q, q, keep=keep, cholesky=jnp.linalg.cholesky(Q))


def solvers():
    found = {"ours": ours, "ours + caller's factor (incl. it)": ours_with_factor}
    if importlib.util.find_spec("jaxnnls"):
        import jaxnnls

        def jaxnnls_default(Q, q, keep):
            pair = keep[:, None] & keep[None, :]
            Q = jnp.where(pair, Q, jnp.eye(Q.shape[0]))
            return jaxnnls.solve_nnls_primal(Q, jnp.where(keep, q, 0.0))

        found["jaxnnls 1.0.1"] = jaxnnls_default
    return found


def scipy_seconds(Q, q, keep, repetitions):
    import scipy.linalg
    import scipy.optimize

    def run():
        for Qi, qi, ki in zip(Q, q, keep, strict=True):
            L = np.linalg.cholesky(Qi[np.ix_(ki, ki)])
            b = scipy.linalg.solve_triangular(L, qi[ki], lower=True)
            scipy.optimize.nnls(L.T, b, maxiter=50 * len(qi))

    return median_seconds(lambda: run(), repetitions=repetitions)


def row(*cells) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def repetitions_for(k: int, batch: int) -> int:
    """Fewer at K=1285, where one solve can take a second, to keep the run to a few minutes."""
    return 7 if k < 500 else (2 if batch == 1 else 1)


def batches_for(k: int, label: str) -> tuple[int, ...]:
    """At K=1285 only our plain solve runs the batch of 32 (jaxnnls: ~1.5 s per lane)."""
    return BATCHES if k < 500 or label == "ours" else BATCHES[:-1]


def solver_rows(name, label, solver, Q, q, keep, cholesky_ms) -> list[str]:
    """Batch 1 is lane 0 alone; "vmap / single" compares a batch's time per solve with the mean
    time of its first lanes solved alone (up to 8 at K=80, 4 at K=1285)."""
    k = Q.shape[-1]
    single = jax.jit(solver)
    lanes_alone = [
        1e3 * median_seconds(single, Q[i], q[i], keep[i], repetitions=repetitions_for(k, 1))
        for i in range(8 if k < 500 else 4)
    ]
    rows = [row(name, label, 1, f"{lanes_alone[0]:.2f}", f"{lanes_alone[0] / cholesky_ms:.2f}", "")]
    batched = jax.jit(jax.vmap(solver))
    for batch in batches_for(k, label)[1:]:
        args = (Q[:batch], q[:batch], keep[:batch])
        seconds = median_seconds(batched, *args, repetitions=repetitions_for(k, batch))
        ms = 1e3 * seconds / batch
        alone = np.mean(lanes_alone[:batch])
        rows.append(row(name, label, batch, f"{ms:.2f}", f"{ms / cholesky_ms:.2f}", f"{ms / alone:.2f}"))
    return rows


def main() -> None:
    print(row("problem", "solver", "batch", "ms / solve", "x Cholesky", "vmap / single"))
    print(row(*["---"] * 6), flush=True)
    for name, (Q, q, keep) in families().items():
        cholesky_ms = 1e3 * median_seconds(jax.jit(jnp.linalg.cholesky), Q[0], repetitions=7)
        rows = [row(name, "one Cholesky", 1, f"{cholesky_ms:.2f}", "1.00", "")]
        for label, solver in solvers().items():
            rows += solver_rows(name, label, solver, Q, q, keep, cholesky_ms)
        if importlib.util.find_spec("scipy"):
            for batch in (1, 8):
                ms = 1e3 * scipy_seconds(Q[:batch], q[:batch], keep[:batch], 3) / batch
                rows.append(
                    row(name, "scipy nnls (loop)", batch, f"{ms:.2f}", f"{ms / cholesky_ms:.2f}", "")
                )
        print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
