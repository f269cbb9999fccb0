"""Maxima and minima whose gradient does not depend on bit-exact recomputation.

JAX differentiates `jnp.max(x)` by testing `x == max(x)` elementwise. Inside one `jit` XLA's CPU
fusions may compute `x` twice, once for the reduction and once for the test, and round the two
differently (a fused multiply-add in one loop, not the other): then no element equals the maximum
and its derivative vanishes. That happened under `jit(vmap(grad(...)))` in the border relocation
(the batched gradient in the lens mass was 4% off while `jit(grad(...))` was right). Reading the
extreme element by its index routes the whole derivative to that element, whatever the rounding.
"""

import jax.numpy as jnp


def max_by_index(values, axis=None):
    """max(values) along `axis` (all elements if None); the derivative flows to the argmax."""
    return _take(values, jnp.argmax(values, axis=axis), axis)


def min_by_index(values, axis=None):
    """min(values) along `axis` (all elements if None); the derivative flows to the argmin."""
    return _take(values, jnp.argmin(values, axis=axis), axis)


def _take(values, index, axis):
    if axis is None:
        return jnp.ravel(values)[index]
    return jnp.squeeze(jnp.take_along_axis(values, jnp.expand_dims(index, axis), axis=axis), axis)
