"""The FastAPI application: `create_app(settings)` wires settings, engine, batcher and routers.

Start-up (the lifespan) builds the models, the configured ones and those the registry restores
(`service.registry`: its schema migrated first), starts the dispatchers and compiles every bucket
on a background thread, so `/healthz` answers at once and `/readyz` turns 200 when every
configured model answers.
Shutdown stops taking requests and finishes the queued batches within `shutdown_grace_s`; what is
still running then (a stuck batch) is logged and marked in `app.state.exit_code` for `serve`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from service import docs
from service.batcher import Batcher, QueueSpec
from service.engine import Engine, configure_jax
from service.environment import intra_op_pool_size
from service.evaluation import Evaluator
from service.metrics import Metrics
from service.models import build_served_model, load_models, model_buckets, served_specs
from service.registry import LensRegistry, RegistryLimits, RegistryStore, restore
from service.routes import health, log_evidence, metrics, models
from service.settings import ServiceSettings

logger = logging.getLogger(__name__)


def _compile_and_freeze(engine: Engine) -> None:
    """Compile every bucket, then exempt everything alive from the cyclic garbage collector.

    Loading JAX, the models and their executables leaves millions of tracked objects that live as
    long as the process; without `gc.freeze` every full collection, which a stream of requests
    triggers every few seconds, traverses them all (18% of the event loop's CPU, perf, 64 clients).
    The collection first keeps the start-up's garbage out of what is frozen.
    """
    engine.compile()
    gc.collect()
    gc.freeze()


def check_dispatchers(dispatchers: int, parallel_lanes: bool) -> None:
    """Refuse more CPU dispatchers than XLA's intra-op pool can hold blocked with one thread to
    spare: each running batch may block one pool thread in a LAPACK batch map, whose chunks need
    another (see `service.environment`); with none left the batches deadlock."""
    pool = intra_op_pool_size()
    if not parallel_lanes and dispatchers >= pool:
        raise ValueError(
            f"{dispatchers} dispatchers need XLA's CPU intra-op pool to have more threads than "
            f"that, but it has {pool}: set PJRT_NPROC={2 * dispatchers} before starting the "
            f"service, or fewer dispatchers (LENSSERVE_DISPATCHERS)"
        )


def queue_spec(engine: Engine, name: str, max_batch_size: int) -> QueueSpec:
    """A model's queue: its buckets, its reference point to pad batches with, and batches of at
    most `max_batch_size` points (or its largest bucket)."""
    buckets = engine.buckets[name]
    return QueueSpec(buckets, engine.models[name].reference_parameters,
                     min(max_batch_size, buckets[-1]), parallel_lanes=engine.parallel_lanes)


def _open_registry(settings: ServiceSettings, configured: set[str]):
    """The registry's store (its schema migrated), how it builds models (as the configured ones
    are built) and the registered models it restores (`service.registry.restore`)."""
    store = RegistryStore(settings.registry_database)
    store.migrate()
    build = partial(build_served_model, kernel_threads=settings.kernel_threads,
                    lanes=settings.lanes, formulation=settings.formulation)
    return store, build, restore(store, build, configured)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def create_app(settings: ServiceSettings, lens_models: Mapping[str, object] | None = None) -> FastAPI:
    """The app serving `settings.models` (or the given `{name: LensModel}`, e.g. in tests).

    Whoever builds `lens_models` first must call `configure_jax(settings.compilation_cache_dir)`:
    JAX fixes its compilation cache at its first compilation, which building a model may do.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_jax(settings.compilation_cache_dir)
        served = dict(lens_models) if lens_models is not None else await asyncio.to_thread(
            load_models, settings.models, settings.kernel_threads, lanes=settings.lanes,
            formulation=settings.formulation,
        )
        specs = served_specs(settings.models) if lens_models is None else settings.models or []
        store, build, restored = await asyncio.to_thread(_open_registry, settings, set(served))
        served.update(restored.models)
        buckets = model_buckets(served, [*specs, *restored.specs.values()], settings.buckets)
        engine = Engine(served, buckets, gradient=settings.gradient, metrics=app_metrics,
                        cache_dir=settings.compilation_cache_dir,
                        device_memory_budget=settings.device_memory_budget)
        dispatchers = settings.dispatchers or engine.default_dispatchers
        check_dispatchers(dispatchers, engine.parallel_lanes)
        engine.concurrent_batches = dispatchers  # as many batches may hold device memory at once
        batcher = Batcher(
            engine.evaluate,
            {name: queue_spec(engine, name, settings.max_batch_size) for name in served},
            max_wait_ms=settings.max_wait_ms,
            max_queue_points=settings.max_queue_points,
            metrics=app_metrics,
            dispatchers=dispatchers,
            watchdog_floor_s=settings.watchdog_floor_s,
            watchdog_factor=settings.watchdog_factor,
        )
        for name in served:  # each queue starts with its smallest bucket; the engine adds the rest
            batcher.set_buckets(name, engine.buckets[name][:1])
        engine.on_buckets = batcher.set_buckets
        batcher.start()
        compiler = threading.Thread(
            target=_compile_and_freeze, args=(engine,), name="lensserve-compile", daemon=True
        )
        compiler.start()
        app.state.registry = LensRegistry(
            store, engine, batcher, build,
            lambda name: queue_spec(engine, name, settings.max_batch_size), settings.buckets,
            restored, retire_timeout_s=settings.request_timeout_s,
            limits=RegistryLimits(settings.max_models, settings.max_registrations_per_minute),
            metrics=app_metrics)
        app.state.evaluator = Evaluator(engine, batcher, app_metrics, settings.request_timeout_s)
        logger.info("serving models %s on %s; compiling buckets %s", list(served), engine.device,
                    engine.buckets)
        for name, model in served.items():
            execution = model.execution
            logger.info("model %s (%s): lanes %s, formulation %s, kernel threads %d", name,
                        model.kind, execution.lanes, execution.formulation,
                        execution.kernel_threads)
        try:
            yield
        finally:
            deadline = getattr(app.state, "shutdown_deadline", None) or (
                time.monotonic() + settings.shutdown_grace_s)
            engine.stop_compiling()
            app.state.registry.close()
            drained = await asyncio.to_thread(batcher.close, _remaining(deadline))
            await asyncio.to_thread(compiler.join, _remaining(deadline))
            if not drained:
                logger.error("shutdown: a batch is still running after the %.0f s grace; every "
                             "thread's stack follows", settings.shutdown_grace_s)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                app.state.exit_code = 1
            else:
                logger.info("batcher drained; shut down")

    app_metrics = Metrics()
    app = FastAPI(
        title="lensserve",
        version="1",
        summary="A warm, batching strong-lens log-evidence service (JAX)",
        lifespan=lifespan,
        **docs.BUILTIN_DOCS_OFF,  # served by docs.router instead, behind the token
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.exit_code = 0
    for router in (health.router, metrics.router, models.router, log_evidence.router, docs.router):
        app.include_router(router)
    app.add_middleware(log_evidence.LogEvidenceFastPath)
    return app
