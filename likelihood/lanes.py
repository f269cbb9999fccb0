"""Batching policy: how a kind's per-point function runs under `vmap` (`Execution.lanes`)."""

from collections.abc import Callable

import jax
from jax.custom_batching import sequential_vmap


def with_lanes(lanes: str, function: Callable) -> Callable:
    """`function` whose lanes under `vmap` run as `lanes` says: "sequential", one after another
    (`lane_by_lane`), or "vectorized", as one batched computation (`function` itself). The
    policy is static (a field of the model's core, `likelihood.core.ModelCore.lanes`), never a
    question to the backend while tracing."""
    if lanes == "sequential":
        return lane_by_lane(function)
    if lanes == "vectorized":
        return function
    raise ValueError(f"lanes must be 'sequential' or 'vectorized', got {lanes!r}")


def lane_by_lane(function: Callable) -> Callable:
    """`function(x)` unchanged, except that under `vmap` its lanes run one after another
    (`lax.map`) instead of as one vectorized computation.

    Why: on a CPU the likelihood is bound by memory traffic, and a vectorized batch multiplies the
    working set of every stage by the batch size, out of the caches: with the MGE a lane of
    vmap 8 cost 2.3x a single call (CPU time), lane by lane it costs what a single call does.

    Reverse mode differentiates `function` as usual (saving its residuals, no recomputation);
    so a `vmap` of the gradient stays vectorized. No forward mode (a `custom_vjp`).
    """
    mapped = sequential_vmap(function)

    @jax.custom_vjp
    def lanes(x):
        return mapped(x)

    def forward(x):
        return jax.vjp(function, x)

    def backward(pullback, cotangent):
        return pullback(cotangent)

    lanes.defvjp(forward, backward)
    return lanes
