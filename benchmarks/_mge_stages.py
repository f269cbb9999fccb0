"""Stage breakdown of one `mge` evaluation, for benchmarks/likelihood.py --model mge.

Each stage is jitted alone and fed the previous stages' outputs, so the sum approximates a single
evaluation (fusion across stages is lost).
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from likelihood.inversion import normal_equations, solve_and_evidence
from likelihood.kinds.mge import radii_squared, weighted_columns


def _median_ms(function, arguments, repeats: int):
    result = jax.block_until_ready(function(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), result


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(stage, median ms)] for one evaluation at `theta` (P,)."""
    theta = jnp.asarray(theta)
    grids = model.grids
    rows = []
    ms, radii = _median_ms(jax.jit(lambda t: radii_squared(model, t)), (theta,), repeats)
    rows.append(("ray tracing + elliptical radii of the support points", ms))
    ms, weighted = _median_ms(jax.jit(lambda r: weighted_columns(model, r)), (radii,), repeats)
    rows.append((f"{len(weighted)} Gaussians: over-sampled images + PSF (FFT) convolution", ms))
    ms, (data_vector, curvature) = _median_ms(
        jax.jit(lambda w: normal_equations(w, grids.data / grids.noise)), (weighted,), repeats)
    rows.append(("normal equations D, F = B^T W B", ms))
    keep = np.ones(len(weighted), dtype=bool)
    ms, _ = _median_ms(jax.jit(lambda d, f, w: solve_and_evidence(
        d, f, None, 0, keep, lambda s: (s @ w) * grids.noise, grids.data, grids.noise,
    ).log_evidence), (data_vector, curvature, weighted), repeats)
    rows.append(("Cholesky + NNLS + log-likelihood", ms))
    return rows
