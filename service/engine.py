"""The compiled-model engine: every model's `jit(vmap(log_evidence))` per bucket, on one device.

This module and `service.executables` are the only ones of the service that touch JAX.
`Engine.compile()` lowers and compiles each model for each bucket (batch size) ahead of time, and
the value-and-gradient variant when enabled, so a request never waits for a compilation;
`Engine.evaluate()` runs one batch whose size is exactly a bucket. Compiled executables go through
a persistent cache when a directory is configured (JAX's, and `service.executables` for those with
host callbacks), which is what makes a restart fast.

Every model's smallest bucket is compiled first, so each model answers as soon as it has one
executable; the larger buckets follow, each handed to `on_buckets` (the batcher) as it is ready.

An executable takes the model's core (`likelihood.core`: its dataset's arrays, on the device once)
as an argument, so models whose cores have the same structure and shapes (the same kind and
settings on same-shaped datasets) share their executables: only the first is compiled.

Models can come and go while the service runs (`service.registry`): `add` puts one's core on the
device, `share_executables` serves it at once when every executable it needs is compiled already
(a warm shape class: nothing compiled), else `compile_model` compiles it, one compilation at a
time; `remove` frees its core and executables (shared ones stay, for the next of its shapes).

Memory: each executable's needs come from XLA's memory analysis (`executables.DeviceMemory`).
With a `device_memory_budget`, a bucket fits when every model's core (resident) plus
`concurrent_batches` runs of its executables (batch, outputs, temporaries; the larger variant)
stay within it. A bucket that does not fit is dropped, with every larger bucket of its model (not
compiled: memory grows with the batch), and logged; a model whose smallest bucket does not fit
fails. So no batch runs out of device memory: what fits is known before anything runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from service.environment import usable_cores
from service.executables import DeviceMemory, compile_batched
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
        cache_dir: Path | None = None,
        on_buckets: Callable[[str, tuple[int, ...]], None] | None = None,
        device_memory_budget: int | None = None,
        concurrent_batches: int = 1,
    ) -> None:
        """`on_buckets(name, buckets)` is told each time a model's compiled buckets grow;
        `device_memory_budget` (bytes, None: no limit) and `concurrent_batches` (the dispatchers:
        how many batches may run at once) decide which buckets are kept (module docstring)."""
        self.models = dict(models)
        self.buckets = {name: tuple(sorted(buckets[name])) for name in self.models}
        self.gradient = gradient
        self._metrics = metrics or Metrics()
        self._cache_dir = cache_dir
        self.on_buckets = on_buckets or (lambda name, buckets: None)
        self._compiled: dict[tuple[str, int, bool], object] = {}
        self._cores: dict[str, object] = {}  # each model's core, on the device
        # (function, core structure, leaf shapes, bucket, gradient) -> executable
        self._by_shape: dict[tuple, object] = {}
        self._compiled_buckets: dict[str, tuple[int, ...]] = dict.fromkeys(self.models, ())
        self._stop = threading.Event()
        self._compile_lock = threading.Lock()  # one compilation at a time: they share the cores
        self.compile_error: str | None = None
        self.device_memory_budget = device_memory_budget
        self.concurrent_batches = concurrent_batches
        # (model, bucket) -> bytes a run needs besides the cores (the larger variant's)
        self._working_memory: dict[tuple[str, int], int] = {}
        self.dropped_buckets: dict[str, tuple[int, ...]] = dict.fromkeys(self.models, ())
        self._failures: dict[str, str] = {}  # model -> why it cannot serve

    @property
    def parallel_lanes(self) -> bool:
        """Whether the device evaluates the lanes of a batch in parallel. Not a CPU: XLA runs the
        lanes of `vmap` one after another there (the small MGE model took 0.87 ms for a bucket
        of 1, 6.3 ms for 8 and 53 ms for 64), so a batch costs a point's time per lane."""
        import jax

        return jax.default_backend() != "cpu"

    @property
    def device(self) -> str:
        """What batches run on: `cpu`, or an accelerator's platform and kind (`gpu (NVIDIA ...)`)."""
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"{device.platform} ({device.device_kind})"

    @property
    def default_dispatchers(self) -> int:
        """Batches worth running side by side: one per core on a CPU (XLA runs each batch on one
        core there, with the intra-op threads `service.environment` turns off), else 1."""
        return 1 if self.parallel_lanes else usable_cores()

    @property
    def ready(self) -> bool:
        """Every model answers (has at least its smallest bucket)."""
        return all(list(self._compiled_buckets.values()))

    def model_ready(self, name: str) -> bool:
        return bool(self._compiled_buckets.get(name))

    def compiled_buckets(self, name: str) -> tuple[int, ...]:
        return self._compiled_buckets[name]

    def working_memory(self, name: str) -> dict[int, int]:
        """{bucket: bytes} a run of each compiled bucket needs on the device besides the models'
        cores (XLA's memory analysis; the larger of its variants)."""
        return {bucket: self._working_memory[name, bucket]
                for bucket in self._compiled_buckets[name] if (name, bucket) in self._working_memory}

    @property
    def resident_memory(self) -> int:
        """Bytes of every model's core, on the device for as long as the service runs."""
        import jax

        return sum(np.asarray(leaf).nbytes for model in list(self.models.values())
                   for leaf in jax.tree_util.tree_leaves(model.core))

    def model_failure(self, name: str) -> str | None:
        """Why the model will not serve (None while it may)."""
        if name in self._failures:
            return self._failures[name]
        if self.compile_error is not None and not self.model_ready(name):
            return self.compile_error
        return None

    def model_state(self, name: str) -> str:
        """`ready` (every bucket), `serving` (some), `compiling` (none yet) or `failed: ...`."""
        failure = self.model_failure(name)
        if failure is not None:
            return f"failed: {failure}"
        if self.compiled_buckets(name) == self.buckets[name]:
            return "ready"
        return "serving" if self.model_ready(name) else "compiling"

    def stop_compiling(self) -> None:
        """Ask `compile` to return after the executable it is building (used at shutdown)."""
        self._stop.set()

    def compile_order(self) -> list[tuple[str, int]]:
        """Every model's smallest bucket first (each model answers as early as it can), then the
        rest, model by model."""
        models = list(self.buckets.items())  # a snapshot: models may be added meanwhile
        first = [(name, buckets[0]) for name, buckets in models]
        rest = [(name, b) for name, buckets in models for b in buckets[1:]]
        return first + rest

    def compile(self) -> None:
        """Compile every model for every bucket (and variant); logs progress; blocks."""
        with self._compile_lock:
            try:
                for name, bucket in self.compile_order():
                    if self._stop.is_set():
                        return
                    if name not in self.models:
                        continue  # removed meanwhile
                    self._compile_bucket(name, bucket)
            except Exception as error:
                self.compile_error = f"{type(error).__name__}: {error}"
                logger.exception("compilation failed; models without a compiled bucket will not "
                                 "serve")
                return
        if self._failures:
            return
        self._metrics.ready.set(1)
        logger.info("all %d models compiled; ready", len(self.models))

    def add(self, name: str, model, buckets: tuple[int, ...]) -> None:
        """Serve one more model (`compile_model` compiles it); its core goes on the device now."""
        import jax

        self._cores[name] = jax.device_put(model.core)
        self.buckets[name] = tuple(sorted(buckets))
        self._compiled_buckets[name] = ()
        self.dropped_buckets[name] = ()
        self.models[name] = model

    def shares_executables(self, name: str) -> bool:
        """Whether every executable `name` needs is compiled already (for a model of the same
        shapes): then `compile_model` compiles nothing."""
        variants = (False, True) if self.gradient else (False,)
        return all(self._shape_key(name, bucket, gradient) in self._by_shape
                   for bucket in self.buckets[name] for gradient in variants)

    def share_executables(self, name: str) -> bool:
        """If `shares_executables(name)`, take them: the model then serves every bucket, and
        nothing was compiled. Else False, and nothing changed."""
        if not self.shares_executables(name):
            return False
        for bucket in self.buckets[name]:
            self._compile_bucket(name, bucket)
        return True

    def compile_model(self, name: str) -> None:
        """Compile one model added with `add`, bucket by bucket; a failure fails this model only.
        Stops if the model is removed meanwhile."""
        with self._compile_lock:
            try:
                for bucket in self.buckets.get(name, ()):
                    if self._stop.is_set() or name not in self.models:
                        break
                    self._compile_bucket(name, bucket)
            except Exception as error:  # noqa: BLE001 - the other models go on serving
                self._failures[name] = f"{type(error).__name__}: {error}"
                logger.exception("compiling model %s failed", name)
            if name not in self.models:
                self._forget(name)  # removed while it compiled: drop what was compiled since

    def remove(self, name: str) -> None:
        """Stop serving `name` and free its core and executables; executables other models
        share stay compiled, for the next model of the same shapes."""
        self.models.pop(name, None)
        self._forget(name)

    def _forget(self, name: str) -> None:
        for key in [key for key in self._compiled if key[0] == name]:
            del self._compiled[key]
        for key in [key for key in self._working_memory if key[0] == name]:
            del self._working_memory[key]
        for table in (self._cores, self.buckets, self._compiled_buckets, self.dropped_buckets,
                      self._failures):
            table.pop(name, None)

    def _compile_bucket(self, name: str, bucket: int) -> None:
        """Compile (or share) both variants of one bucket and hand the bucket to `on_buckets`."""
        if bucket not in self.buckets[name]:
            return  # dropped with a smaller bucket that did not fit
        for gradient in (False, True) if self.gradient else (False,):
            self._compile_one(name, bucket, gradient)
        if not self._fits(name, bucket):
            return
        self._compiled_buckets[name] = tuple(sorted((*self._compiled_buckets[name], bucket)))
        self.on_buckets(name, self._compiled_buckets[name])
        if self._compiled_buckets[name] == self.buckets[name]:
            logger.info("model %s ready: buckets %s", name, list(self.buckets[name]))

    def _fits(self, name: str, bucket: int) -> bool:
        """Whether `bucket` fits the device memory budget; if not, drop it and the model's larger
        buckets, and log it (or fail the model, if it was its smallest)."""
        working = self._working_memory.get((name, bucket))
        if self.device_memory_budget is None or working is None:
            return True
        resident = self.resident_memory
        needed = resident + self.concurrent_batches * working
        if needed <= self.device_memory_budget:
            return True
        dropped = tuple(b for b in self.buckets[name] if b >= bucket)
        reason = (f"bucket {bucket} needs {_mb(needed)} of device memory (the cores "
                  f"{_mb(resident)} and {self.concurrent_batches} x {_mb(working)} to run it, "
                  f"{_mb(working / bucket)} a lane on average), over device_memory_budget "
                  f"{_mb(self.device_memory_budget)}")
        self.buckets[name] = tuple(b for b in self.buckets[name] if b < bucket)
        self.dropped_buckets[name] = dropped
        for gradient in (False, True):
            self._compiled.pop((name, bucket, gradient), None)
        if not self.buckets[name]:
            self._failures[name] = reason
            logger.error("model %s will not serve: %s", name, reason)
        else:
            logger.warning("model %s: %s; buckets %s dropped, serving %s", name, reason,
                           list(dropped), list(self.buckets[name]))
            if self._compiled_buckets[name] == self.buckets[name]:
                logger.info("model %s ready: buckets %s", name, list(self.buckets[name]))
        return False

    def _compile_one(self, name: str, bucket: int, gradient: bool) -> None:
        import jax

        model = self.models[name]
        if name not in self._cores:
            self._cores[name] = jax.device_put(model.core)
        core = self._cores[name]
        function = model.evidence_function
        key = self._shape_key(name, bucket, gradient)
        started = time.perf_counter()
        if key in self._by_shape:
            self._compiled[name, bucket, gradient], memory = self._by_shape[key]
            self._note_memory(name, bucket, memory)
            logger.info("model %s bucket %d%s shares a compiled executable", name, bucket,
                        " value_and_grad" if gradient else "")
            return
        compiled = compile_batched(jax.value_and_grad(function, argnums=1) if gradient else function,
                                   core, bucket, len(model.parameter_names), self._cache_dir)
        self._compiled[name, bucket, gradient] = compiled.run
        self._by_shape[key] = (compiled.run, compiled.memory)
        self._note_memory(name, bucket, compiled.memory)
        seconds = time.perf_counter() - started
        self._metrics.observe_compilation(name, gradient, seconds)
        logger.info(
            "%s model %s bucket %d%s in %.2f s; %s on the device besides the core",
            "loaded" if compiled.source == "cache" else "compiled", name, bucket,
            " value_and_grad" if gradient else "", seconds,
            "unknown" if compiled.memory is None else _mb(compiled.memory.working),
        )

    def _shape_key(self, name: str, bucket: int, gradient: bool) -> tuple:
        """What two models' executables for a bucket and variant have in common when shared."""
        core = self._cores[name] if name in self._cores else self.models[name].core
        return (self.models[name].evidence_function, *shape_signature(core), bucket, gradient)

    def _note_memory(self, name: str, bucket: int, memory: DeviceMemory | None) -> None:
        if memory is not None:
            self._working_memory[name, bucket] = max(memory.working,
                                                     self._working_memory.get((name, bucket), 0))

    def evaluate(
        self, name: str, batch: np.ndarray, gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Log-evidence (bucket,) and, if asked, gradients (bucket, P) of one bucket-sized batch."""
        executable = self._compiled[name, batch.shape[0], gradient]
        if gradient:
            values, gradients = executable(self._cores[name], batch)
            return values, gradients
        return executable(self._cores[name], batch), None


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def shape_signature(core) -> tuple:
    """What an executable compiled for `core` needs of another core to run it: the same pytree
    structure (static parts included) and leaf shapes and dtypes."""
    import jax

    leaves, structure = jax.tree_util.tree_flatten(core)
    return structure, tuple((leaf.shape, str(leaf.dtype)) for leaf in leaves)
