"""Nested-sampler adapters: a `Client` (or `FixedParameters`) as each sampler wants it.

Each takes a `source` with `.model` (names, `prior_transform`) and `.log_evidence` and builds the
sampler; the samplers are optional dependencies (`pip install lensserve[samplers]`), imported here
only when an adapter is called.

    client = Client("http://127.0.0.1:8000", "mge")
    nautilus_sampler(client, n_live=1000).run(verbose=True)
    ultranest_sampler(client).run()
    with ThreadPool(8) as pool:
        dynesty_sampler(client, pool, nlive=500).run_nested()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# UltraNest and dynesty reject non-finite log-likelihoods; each gets its own floor instead.
ULTRANEST_FLOOR = -1e100
DYNESTY_FLOOR = -1e300


def nautilus_sampler(source: Any, **kwargs: Any):
    """A `nautilus.Sampler` sending each batch of proposals (about `n_batch`) as one request.

    nautilus accepts -inf log-likelihoods, so unphysical points pass through unchanged.
    """
    import nautilus

    return nautilus.Sampler(
        source.model.prior_transform, source.log_evidence, n_dim=source.model.n_params,
        vectorized=True, pass_dict=False, **kwargs,
    )


def ultranest_sampler(source: Any, **kwargs: Any):
    """An `ultranest.ReactiveNestedSampler` with vectorized likelihood and prior transform."""
    import ultranest

    def log_likelihood(points: np.ndarray) -> np.ndarray:
        return np.maximum(source.log_evidence(points), ULTRANEST_FLOOR)

    return ultranest.ReactiveNestedSampler(
        list(source.model.parameter_names), log_likelihood, source.model.prior_transform,
        vectorized=True, **kwargs,
    )


class ThreadPool:
    """A dynesty `pool`: `map` runs calls on `size` threads, so that many single-point requests
    are in flight at once and the service batches them together. Use as a context manager."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="lensserve-dynesty")

    def map(self, function: Callable[[Any], Any], iterable: Iterable[Any]) -> list[Any]:
        return list(self._executor.map(function, iterable))

    def close(self) -> None:
        self._executor.shutdown()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def dynesty_sampler(source: Any, pool: ThreadPool, dynamic: bool = False, **kwargs: Any):
    """A dynesty (Dynamic)NestedSampler whose `queue_size` proposals run concurrently on `pool`."""
    import dynesty

    def log_likelihood(point: np.ndarray) -> float:
        return max(float(source.log_evidence(point)[0]), DYNESTY_FLOOR)

    sampler = dynesty.DynamicNestedSampler if dynamic else dynesty.NestedSampler
    kwargs.setdefault("queue_size", pool.size)
    return sampler(log_likelihood, source.model.prior_transform, source.model.n_params, pool=pool,
                   **kwargs)
