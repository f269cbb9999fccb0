"""Compile a model's batched function for one bucket, loading it from a persistent cache if it
was compiled before, host callbacks or not.

JAX's persistent compilation cache never stores an executable that makes host callbacks
(`jax.pure_callback`: the pixelized kinds' Delaunay triangulation and CPU curvature kernel),
because the callbacks are Python objects of the process that compiled it: so every restart
compiled the pixelized kinds again (24-34 s a bucket on the 2-core machine). The executable only
refers to its callbacks by position, though, and XLA can load a serialized executable with a
new list of them (`deserialize_executable(..., host_callbacks=...)`): lowering the same function
again, which only traces, gives that list in the same order. `HostCallbackCache` keeps such
executables under a key of the lowered program's text, so a restart traces and loads.

Executables without host callbacks go through JAX's own cache as before.

This reads two things JAX does not document: `Lowered._lowering.compile_args["host_callbacks"]`
and `Lowered.out_tree`, and calls the backend's `serialize_executable` /
`deserialize_executable`; `tests/service/test_executables.py` checks the round trip in two
processes, so a JAX upgrade that changes them fails there, not in production.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# (core, batch (bucket, P)) -> the function's outputs (NumPy), for any core of the compiled
# core's structure and shapes (`likelihood.core`).
BatchFunction = Callable[[object, np.ndarray], object]


@dataclass(frozen=True)
class DeviceMemory:
    """XLA's memory analysis of one executable (its buffer assignment for the device it was
    compiled for), in bytes: `arguments` (the model's core and the batch, `batch` of them),
    `outputs`, `temporaries`, and `aliased` (outputs placed in an argument's buffer). Host
    memory is not in it: the CPU curvature kernel's and Qhull's buffers (host callbacks)."""

    arguments: int
    batch: int
    outputs: int
    temporaries: int
    aliased: int

    @property
    def core(self) -> int:
        """The model's core: on the device for as long as the service runs, whatever runs."""
        return self.arguments - self.batch

    @property
    def working(self) -> int:
        """What one run needs besides the core: the batch, the outputs and the temporaries."""
        return self.batch + self.outputs + self.temporaries - self.aliased


def device_memory(stats, batch_bytes: int) -> DeviceMemory | None:
    """The `DeviceMemory` of XLA's `CompiledMemoryStats` (None where the backend gives none)."""
    if stats is None:
        return None
    return DeviceMemory(stats.argument_size_in_bytes, batch_bytes, stats.output_size_in_bytes,
                        stats.temp_size_in_bytes, stats.alias_size_in_bytes)


@dataclass(frozen=True)
class Compiled:
    """A runnable executable, where it came from: "compiled" or "cache" (ours; JAX's own cache
    hits, for executables without host callbacks, count as "compiled"), and its memory."""

    run: BatchFunction
    source: str
    memory: DeviceMemory | None


def compile_batched(function: Callable, core, bucket: int, n_params: int,
                    cache_dir: Path | None) -> Compiled:
    """`jit(vmap(function, in_axes=(None, 0)))` compiled for a model core shaped as `core` and
    `(bucket, n_params)` float64 batches: `function(core, theta)`."""
    import jax
    import jax.numpy as jnp

    shape = jax.ShapeDtypeStruct((bucket, n_params), jnp.float64)
    # keep_unused: the executable then takes every leaf of the core, in order, whatever the
    # function reads, which is what `_run_loaded` passes it.
    batched = jax.jit(jax.vmap(function, in_axes=(None, 0)), keep_unused=True)
    lowered = batched.lower(core, shape)
    callbacks = lowered._lowering.compile_args["host_callbacks"]
    batch_bytes = bucket * n_params * np.dtype(np.float64).itemsize
    if not callbacks or cache_dir is None:
        compiled = lowered.compile()
        return Compiled(_numpy_outputs(compiled), "compiled",
                        device_memory(compiled.memory_analysis(), batch_bytes))
    return HostCallbackCache(cache_dir).load_or_compile(lowered, callbacks, batch_bytes)


def _numpy_outputs(executable: Callable) -> BatchFunction:
    import jax

    return lambda core, batch: jax.tree_util.tree_map(np.asarray, executable(core, batch))


class HostCallbackCache:
    """Serialized executables with host callbacks, one file per lowered program."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "host-callbacks"

    def load_or_compile(self, lowered, callbacks, batch_bytes: int) -> Compiled:
        import jax

        backend = jax.devices()[0].client
        path = self.directory / f"{program_key(lowered.as_text(), backend.platform_version)}.xla"
        if path.is_file():
            try:
                loaded = backend.deserialize_executable(
                    path.read_bytes(), _device_list(), None, host_callbacks=callbacks)
                return Compiled(_run_loaded(loaded, lowered.out_tree, callbacks), "cache",
                                device_memory(loaded.get_compiled_memory_stats(), batch_bytes))
            except Exception as error:  # noqa: BLE001 - a bad entry is recompiled, not fatal
                logger.warning("cached executable %s unusable (%s: %s); compiling again",
                               path.name, type(error).__name__, error)
        compiled = lowered.compile()
        self._write(path, backend.serialize_executable(compiled.runtime_executable()))
        return Compiled(_numpy_outputs(compiled), "compiled",
                        device_memory(compiled.memory_analysis(), batch_bytes))

    def _write(self, path: Path, data: bytes) -> None:
        """Atomically (a restart that dies mid-write leaves no half file to load)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)


def program_key(program_text: str, platform_version: str) -> str:
    """What must match for a stored executable to be the one this process would compile: the
    program, the JAX and XLA versions, XLA's flags and the processor it was compiled for."""
    import jax
    import jaxlib

    parts = (program_text, jax.__version__, jaxlib.__version__, platform_version,
             os.environ.get("XLA_FLAGS", ""), platform.machine(), _cpu_flags())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _cpu_flags() -> str:
    """The processor's feature flags: XLA compiles CPU code for the features it finds, and code
    for features another processor lacks would crash there (a cache directory can be shared)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def _device_list():
    import jax
    from jaxlib._jax import DeviceList

    return DeviceList((jax.devices()[0],))


def _run_loaded(loaded, out_tree, callbacks) -> BatchFunction:
    import jax

    device = jax.devices()[0]

    def run(core, batch: np.ndarray):
        arguments = [*jax.tree_util.tree_leaves(core), batch]
        results = loaded.execute_sharded([jax.device_put(a, device) for a in arguments])
        leaves = [np.asarray(shards[0]) for shards in results.disassemble_into_single_device_arrays()]
        return jax.tree_util.tree_unflatten(out_tree, leaves)

    run.callbacks = callbacks  # the executable calls them by position: keep them alive with it
    return run
