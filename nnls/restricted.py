"""Linear solves restricted to a subset of the unknowns: ``x_S = Q_SS^-1 b_S``, ``x = 0`` off ``S``.

Shapes in JAX are static but the subset is data, so the subset is gathered into the smallest of a
few fixed sizes ("buckets", multiples of K/4) and ``lax.switch`` picks that branch. This pays
off because the solver runs lanes one at a time (see ``forward.py``): the switch is a real branch,
and a free block of K/2 costs an eighth of a full factorization instead of all of it.
"""

import math

import jax.numpy as jnp
from jax import Array, lax
from jax.scipy.linalg import cho_solve

from nnls.triangular import lower_solve

N_BUCKETS = 4


# Below this size a factorization is too cheap for smaller blocks to repay the extra branches
# (each branch is compiled).
MIN_BUCKETED_SIZE = 256


def bucket_sizes(k: int, *, include_zero: bool) -> tuple[int, ...]:
    """Static sizes ceil(k j / 4), j = 1..4 (only k when k is small), and 0 if asked; ascending."""
    steps = range(1, N_BUCKETS + 1) if k >= MIN_BUCKETED_SIZE else (N_BUCKETS,)
    sizes = {math.ceil(k * j / N_BUCKETS) for j in steps}
    return tuple(sorted(sizes | ({0} if include_zero else set())))


def _switch_on_count(mask: Array, sizes: tuple[int, ...], branch, *operands) -> Array:
    """Run ``branch(size, order, count, *operands)`` for the smallest static size >= mask.sum().

    ``order`` lists the True indices of ``mask`` first (ascending), then the others, so its first
    ``size`` entries gather the subset padded with outside indices.
    """
    count = jnp.sum(mask)
    order = jnp.argsort(~mask, stable=True)
    index = jnp.searchsorted(jnp.asarray(sizes), count)
    branches = [lambda *ops, m=m: branch(m, *ops) for m in sizes]
    return lax.switch(index, branches, order, count, *operands)


def _free_branch(m: int, order: Array, count: Array, Q: Array, b: Array) -> Array:
    idx = order[:m]
    valid = jnp.arange(m) < count
    pair = valid[:, None] & valid[None, :]
    # Padding rows become identity rows so the padded block stays positive definite.
    block = jnp.where(pair, Q[idx[:, None], idx[None, :]], jnp.eye(m, dtype=Q.dtype))
    factor = lax.linalg.cholesky(block, symmetrize_input=False)
    x_block = cho_solve((factor, True), jnp.where(valid, b[idx], 0.0))
    return jnp.zeros_like(b).at[idx].set(jnp.where(valid, x_block, 0.0))


def free_block_solve(Q: Array, b: Array, free: Array) -> Array:
    """x (K,) with x_F = Q_FF^-1 b_F and x = 0 off F, factoring only the (bucketed) block Q_FF.

    Q (K, K) symmetric positive definite; b (K,); free (K,) bool.
    """
    sizes = bucket_sizes(b.shape[0], include_zero=False)
    return _switch_on_count(free, sizes, _free_branch, Q, b)


def _held_branch(m: int, order: Array, count: Array, L: Array, b: Array, keep: Array) -> Array:
    idx = order[:m]
    valid = (jnp.arange(m) < count).astype(b.dtype)
    unit_columns = jnp.zeros((b.shape[0], m), b.dtype).at[idx, jnp.arange(m)].set(valid)
    W = lower_solve(L, unit_columns)  # L^-1 E_A, (K, m)
    u = lower_solve(L, jnp.where(keep, b, 0.0))
    x_free = lower_solve(L, u, transpose=True)  # Q^-1 [b_keep; 0]
    pair = (valid[:, None] * valid[None, :]).astype(bool)
    schur = jnp.where(pair, W.T @ W, jnp.eye(m, dtype=b.dtype))  # (Q^-1)_AA, padded with I
    multiplier = -cho_solve(
        (lax.linalg.cholesky(schur, symmetrize_input=False), True), x_free[idx] * valid
    )
    x = lower_solve(L, u + W @ multiplier, transpose=True)
    return jnp.where(keep, x, 0.0)


def factored_solve(L: Array, b: Array, keep: Array) -> Array:
    """The restricted solve of ``free_block_solve`` for S = keep, given the lower Cholesky factor
    L (K, K) of the whole Q, without factoring Q_SS.

    With A the held set (~keep) and E_A its unit columns, ``x = Q^-1 (b_S + E_A mu)`` with
    ``(Q^-1)_AA mu = -(Q^-1 b_S)_A`` makes ``x_A = 0``: it costs triangular solves with |A|
    right-hand sides (|A| bucketed, none when keep is all True) plus an |A| x |A| factorization.
    """
    sizes = bucket_sizes(b.shape[0], include_zero=True)
    return _switch_on_count(~keep, sizes, _held_branch, L, b, keep)
