"""Stage breakdown of one `mge` evaluation, for benchmarks/likelihood.py --model mge.

Each stage is jitted alone and fed the previous stages' outputs, so the sum approximates a single
evaluation (fusion across stages is lost).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _timing import median_ms

from likelihood.inversion import normal_equations, solve_and_evidence
from likelihood.kinds.mge import radii_squared, weighted_columns


def stage_timings(model, theta, repeats: int) -> list[tuple[str, float]]:
    """[(stage, median ms)] for one evaluation at `theta` (P,)."""
    theta = jnp.asarray(theta)
    grids = model.grids
    rows = []
    ms, radii = median_ms(jax.jit(lambda t: radii_squared(model, t)), (theta,), repeats)
    rows.append(("ray tracing + elliptical radii of the support points", ms))
    ms, weighted = median_ms(jax.jit(lambda r: weighted_columns(model, r)), (radii,), repeats)
    rows.append((f"{len(weighted)} Gaussians: over-sampled images + PSF (FFT) convolution", ms))
    ms, (data_vector, curvature) = median_ms(
        jax.jit(lambda w: normal_equations(w, grids.data / grids.noise)), (weighted,), repeats)
    rows.append(("normal equations D, F = B^T W B", ms))
    keep = np.ones(len(weighted), dtype=bool)
    ms, _ = median_ms(jax.jit(lambda d, f, w: solve_and_evidence(
        d, f, None, 0, keep, w, grids.data, grids.noise,
    ).log_evidence), (data_vector, curvature, weighted), repeats)
    rows.append(("Cholesky + NNLS + log-likelihood", ms))
    return rows
