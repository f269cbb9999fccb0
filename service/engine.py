"""The compiled-model engine: every model's `jit(vmap(log_evidence))` per bucket, on one device.

This is the only module of the service that touches JAX. `Engine.compile()` lowers and compiles
each model for each bucket (batch size) ahead of time, and the value-and-gradient variant when
enabled, so a request never waits for a compilation; `Engine.evaluate()` runs one batch whose size
is exactly a bucket. Compiled executables go through JAX's persistent compilation cache when a
directory is configured, which is what makes a restart fast.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from service.metrics import Metrics

logger = logging.getLogger(__name__)


def configure_jax(compilation_cache_dir: Path | None) -> None:
    """Process-wide JAX configuration the service relies on: float64 and the compilation cache."""
    import jax

    jax.config.update("jax_enable_x64", True)
    if compilation_cache_dir is not None:
        compilation_cache_dir.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(compilation_cache_dir))
        # Cache every executable, however quick to compile: a restart should compile nothing.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class Engine:
    """Owns the models' compiled executables (`buckets`: each model's batch sizes); `evaluate` may
    be called from several threads at once (XLA executables are thread-safe)."""

    def __init__(
        self,
        models: Mapping[str, object],
        buckets: Mapping[str, tuple[int, ...]],
        *,
        gradient: bool,
        metrics: Metrics | None = None,
    ) -> None:
        self.models = dict(models)
        self.buckets = {name: tuple(sorted(buckets[name])) for name in self.models}
        self.gradient = gradient
        self._metrics = metrics or Metrics()
        self._compiled: dict[tuple[str, int, bool], object] = {}
        self._ready_models: set[str] = set()
        self._stop = threading.Event()
        self.compile_error: str | None = None

    @property
    def parallel_lanes(self) -> bool:
        """Whether the device evaluates the lanes of a batch in parallel. Not a CPU: XLA runs the
        lanes of `vmap` one after another there (the small MGE model took 0.87 ms for a bucket
        of 1, 6.3 ms for 8 and 53 ms for 64), so a batch costs a point's time per lane."""
        import jax

        return jax.default_backend() != "cpu"

    @property
    def default_dispatchers(self) -> int:
        """Batches worth running side by side: one per core on a CPU (XLA runs each batch on one
        core there, with the intra-op threads `service.environment` turns off), else 1."""
        if self.parallel_lanes:
            return 1
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def ready(self) -> bool:
        return len(self._ready_models) == len(self.models)

    def model_ready(self, name: str) -> bool:
        return name in self._ready_models

    def stop_compiling(self) -> None:
        """Ask `compile` to return after the executable it is building (used at shutdown)."""
        self._stop.set()

    def compile(self) -> None:
        """Compile every model for every bucket (and variant); logs progress; blocks."""
        try:
            for name, model in self.models.items():
                for bucket in self.buckets[name]:
                    for gradient in (False, True) if self.gradient else (False,):
                        if self._stop.is_set():
                            return
                        self._compile_one(name, model, bucket, gradient)
                self._ready_models.add(name)
                logger.info("model %s ready: buckets %s", name, list(self.buckets[name]))
        except Exception as error:
            self.compile_error = f"{type(error).__name__}: {error}"
            logger.exception("compilation failed; the service will not become ready")
            return
        self._metrics.ready.set(1)
        logger.info("all %d models compiled; ready", len(self.models))

    def _compile_one(self, name: str, model, bucket: int, gradient: bool) -> None:
        import jax
        import jax.numpy as jnp

        function = jax.value_and_grad(model.log_evidence) if gradient else model.log_evidence
        shape = jax.ShapeDtypeStruct((bucket, len(model.parameter_names)), jnp.float64)
        started = time.perf_counter()
        self._compiled[name, bucket, gradient] = jax.jit(jax.vmap(function)).lower(shape).compile()
        seconds = time.perf_counter() - started
        self._metrics.observe_compilation(name, gradient, seconds)
        logger.info(
            "compiled model %s bucket %d%s in %.2f s", name, bucket,
            " value_and_grad" if gradient else "", seconds,
        )

    def evaluate(
        self, name: str, batch: np.ndarray, gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Log-evidence (bucket,) and, if asked, gradients (bucket, P) of one bucket-sized batch."""
        executable = self._compiled[name, batch.shape[0], gradient]
        if gradient:
            values, gradients = executable(batch)
            return np.asarray(values), np.asarray(gradients)
        return np.asarray(executable(batch)), None
