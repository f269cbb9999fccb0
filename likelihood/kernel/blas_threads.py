"""One BLAS thread while a kernel call runs on several threads.

Each kernel thread's products (`tiles.gram_upper` and the small matrix products) are small and
need no more than one BLAS thread; OpenBLAS's busy-waiting workers took the other core (a reverse
pass went from 122 ms on one thread to 220 ms on two). So while any multi-threaded kernel call
runs, every BLAS library runs single-threaded (threadpoolctl), whatever OPENBLAS_NUM_THREADS
says. The service's environment (OPENBLAS_NUM_THREADS=1) makes this a no-op.
"""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController


class OneBlasThread:
    """A context manager; counted, so that concurrent kernel calls (the service's dispatchers)
    limit the libraries at the first entry and restore their settings once, after the last exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._controller = self._limiter = None

    def __enter__(self) -> None:
        with self._lock:
            if self._calls == 0:
                # Made at the first call, when every BLAS a kernel may use has been loaded.
                self._controller = self._controller or ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._calls += 1

    def __exit__(self, *_) -> None:
        with self._lock:
            self._calls -= 1
            if self._calls == 0:
                self._limiter.restore_original_limits()


# One for the process, because the BLAS libraries' thread counts are process state: limiters
# of their own per stencil would restore each other's limits while another call still runs.
# It reads no configuration; it holds only the count of calls running.
ONE_BLAS_THREAD = OneBlasThread()
