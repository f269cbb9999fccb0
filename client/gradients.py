"""A JAX log-density backed by the service, for gradient samplers (blackjax, numpyro, ...).

JAX is imported only here, when `jax_log_density` is called: the rest of the client needs none.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def jax_log_density(source: Any):
    """`f(theta) -> log-evidence`, a JAX function of (..., P) arrays with a custom VJP.

    The value comes from the service through `jax.pure_callback` (forward only); `jax.grad` asks
    for value and gradient in one request. Under `jax.vmap` the callback sees the whole batch
    (`vmap_method="expand_dims"`) and sends it as one request. Works under `jit`; the service must
    have gradients enabled for `grad`.
    """
    import jax

    n_params = source.model.n_params

    def _values(theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta)
        values = source.log_evidence(theta.reshape(-1, n_params))
        return values.reshape(theta.shape[:-1]).astype(theta.dtype)

    def _values_and_grads(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.asarray(theta)
        values, grads = source.value_and_grad(theta.reshape(-1, n_params))
        return (values.reshape(theta.shape[:-1]).astype(theta.dtype),
                grads.reshape(theta.shape).astype(theta.dtype))

    def _shapes(theta):
        return (jax.ShapeDtypeStruct(theta.shape[:-1], theta.dtype),
                jax.ShapeDtypeStruct(theta.shape, theta.dtype))

    @jax.custom_vjp
    def log_density(theta):
        return jax.pure_callback(_values, _shapes(theta)[0], theta, vmap_method="expand_dims")

    def forward(theta):
        value, grad = jax.pure_callback(_values_and_grads, _shapes(theta), theta,
                                        vmap_method="expand_dims")
        return value, grad

    def backward(grad, cotangent):
        return (cotangent[..., None] * grad,)

    log_density.defvjp(forward, backward)
    return log_density
