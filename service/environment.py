"""Process-wide defaults the service starts with: environment variables that JAX, NumPy and SciPy
read once (XLA when it creates its backend, OpenBLAS when its library loads), so
`set_default_environment()` must run before they are imported. A variable the user set is kept."""

from __future__ import annotations

import os

DEFAULT_ENVIRONMENT = {
    # On a small CPU a multi-threaded Eigen inside XLA deadlocked jit(vmap(...)); see README,
    # Configuration.
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    # jaxlib runs its CPU LAPACK calls (Cholesky, triangular solves) on SciPy's OpenBLAS, whose
    # worker thread busy-waits for work: on the 2-core machine it spun on half a core beside the
    # computation and the event loop, and the fiducial MGE model took 130 ms per point against
    # 27 ms with one thread.
    "OPENBLAS_NUM_THREADS": "1",
}


def set_default_environment() -> None:
    for name, value in DEFAULT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
