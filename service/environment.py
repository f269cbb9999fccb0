"""Process-wide defaults the service starts with: environment variables that JAX, NumPy and SciPy
read once (XLA when it creates its backend, OpenBLAS when its library loads, JAX its platforms), so
`set_default_environment()` must run before they are imported, and glibc's malloc settings. A
variable the user set is kept."""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import platform


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def intra_op_pool_size() -> int:
    """The threads of XLA's CPU intra-op pool, as XLA sizes it when it creates its client
    (`PJRT_NPROC`, else `NPROC`, else the cores)."""
    for name in ("PJRT_NPROC", "NPROC"):
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return usable_cores()

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
    # XLA's CPU intra-op pool, twice the cores (XLA's default is the cores). jaxlib's LAPACK
    # kernels (Cholesky, triangular solves, eigh) split a batch of large matrices into chunks on
    # this pool and block until the chunks are done, without running any themselves. An execution
    # that has made a host callback (the pixelized kinds' Delaunay and curvature-kernel steps)
    # goes on on a pool thread, so with one dispatcher per core every pool thread could end up
    # blocked in such a wait with the chunks queued behind them: the deadlock of issue 16
    # (gdb: both XLAEigen threads in ParallelBatchMap -> BlockingCounter::Wait). With one thread
    # per dispatcher to block and still one per core to run the chunks, the waits always end.
    "PJRT_NPROC": str(2 * usable_cores()),
}


# glibc's mallopt parameters, and the variables by which a user sets them instead.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                    "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from its heap and keep freed memory for reuse.

    By default it maps large blocks (over a threshold that moves between 128 KB and 32 MB) fresh
    from the kernel, unmaps them when freed and trims its heap, so every evaluation touches its
    buffers (XLA's, the curvature kernel's) as new pages: a single `rectangular` evaluation at the
    fiducial took 21,000 page faults and 45-75 ms of system time; with these settings, 1 to 3 page
    faults and 5 ms. The cost is that the process keeps its peak heap. Returns whether the
    settings were applied: not outside glibc, nor when the user set any of MALLOC_VARIABLES."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in MALLOC_VARIABLES):
        return False
    libc = ctypes.CDLL(None)
    largest = ctypes.c_int(2**31 - 1)
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in (
        (M_MMAP_THRESHOLD, largest), (M_TRIM_THRESHOLD, largest),
        (M_TOP_PAD, ctypes.c_int(256 << 20))))


def accelerator_installed() -> bool:
    """Whether JAX could find an accelerator in this environment, told without importing JAX: a
    PJRT plugin (`jax[cuda12]`'s, ROCm's: modules of the `jax_plugins` namespace package or its
    entry points, as JAX discovers them) or libtpu (`jax[tpu]`, or `TPU_LIBRARY_PATH`)."""
    return (importlib.util.find_spec("jax_plugins") is not None
            or importlib.util.find_spec("libtpu") is not None
            or "TPU_LIBRARY_PATH" in os.environ
            or bool(importlib.metadata.entry_points(group="jax_plugins")))


def set_default_environment() -> None:
    for name, value in DEFAULT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # Without an accelerator's plugin JAX can only run on the CPU, but it still probes for a TPU
    # and logs "Unable to initialize backend 'tpu'" at start-up. With a plugin (the gpu extra)
    # JAX chooses among what it finds, and falls back to the CPU where no device is visible.
    if not accelerator_installed():
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    keep_freed_memory()
