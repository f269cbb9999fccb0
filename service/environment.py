"""Process-wide defaults the service starts with: environment variables that JAX, NumPy and SciPy
read once (XLA when it creates its backend, OpenBLAS when its library loads), so
`set_default_environment()` must run before they are imported. A variable the user set is kept."""

from __future__ import annotations

import os

DEFAULT_ENVIRONMENT = {
    # On a small CPU a multi-threaded Eigen inside XLA deadlocked jit(vmap(...)); see README,
    # Configuration. XLA's YNNPACK fusions (jaxlib 0.10) fuse a dot with its consumers into a
    # kernel that ran the pixelized kinds' Gram product F = A A^T 4x slower, and their gradient
    # 200x slower (2.3 s against over 8 minutes per value_and_grad at the fiducial); the MGE's
    # speed is the same within noise without them.
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false --xla_cpu_experimental_ynn_fusion_type=",
    # jaxlib runs its CPU LAPACK calls (Cholesky, triangular solves) on SciPy's OpenBLAS, whose
    # worker thread busy-waits for work: on the 2-core machine it spun on half a core beside the
    # computation and the event loop, and the fiducial MGE model took 130 ms per point against
    # 27 ms with one thread.
    "OPENBLAS_NUM_THREADS": "1",
}


def set_default_environment() -> None:
    for name, value in DEFAULT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
