"""Timing shared by the stage breakdowns (benchmarks/_<kind>_stages.py)."""

import statistics
import time

import jax


def median_ms(function, arguments, repeats: int):
    """(median ms of `function(*arguments)` after one warm-up call, the warm-up's result)."""
    result = jax.block_until_ready(function(*arguments))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), result
