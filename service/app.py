"""The FastAPI application: `create_app(settings)` wires settings, engine, batcher and routers.

Start-up (the lifespan) builds the models, starts the dispatchers and compiles every bucket on a
background thread, so `/healthz` answers at once and `/readyz` turns 200 when compilation is done.
Shutdown stops taking requests, finishes every queued batch, then returns.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.batcher import Batcher, QueueSpec
from service.engine import Engine, configure_jax
from service.evaluation import Evaluator
from service.metrics import Metrics
from service.models import load_models, model_buckets, served_specs
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


def create_app(settings: ServiceSettings, lens_models: Mapping[str, object] | None = None) -> FastAPI:
    """The app serving `settings.models` (or the given `{name: LensModel}`, e.g. in tests).

    Whoever builds `lens_models` first must call `configure_jax(settings.compilation_cache_dir)`:
    JAX fixes its compilation cache at its first compilation, which building a model may do.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_jax(settings.compilation_cache_dir)
        served = dict(lens_models) if lens_models is not None else await asyncio.to_thread(
            load_models, settings.models
        )
        specs = served_specs(settings.models) if lens_models is None else settings.models or []
        buckets = model_buckets(served, specs, settings.buckets)
        engine = Engine(served, buckets, gradient=settings.gradient, metrics=app_metrics)
        batcher = Batcher(
            engine.evaluate,
            {name: QueueSpec(engine.buckets[name], model.reference_parameters,
                             min(settings.max_batch_size, engine.buckets[name][-1]),
                             parallel_lanes=engine.parallel_lanes)
             for name, model in served.items()},
            max_wait_ms=settings.max_wait_ms,
            max_queue_points=settings.max_queue_points,
            metrics=app_metrics,
            dispatchers=settings.dispatchers or engine.default_dispatchers,
        )
        batcher.start()
        compiler = threading.Thread(
            target=_compile_and_freeze, args=(engine,), name="lensserve-compile", daemon=True
        )
        compiler.start()
        app.state.evaluator = Evaluator(engine, batcher, app_metrics, settings.request_timeout_s)
        logger.info("serving models %s; compiling buckets %s", list(served), engine.buckets)
        try:
            yield
        finally:
            engine.stop_compiling()
            await asyncio.to_thread(batcher.close)
            await asyncio.to_thread(compiler.join)
            logger.info("batcher drained; shut down")

    app_metrics = Metrics()
    app = FastAPI(
        title="lensserve",
        version="1",
        summary="A warm, batching strong-lens log-evidence service (JAX)",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    for router in (health.router, metrics.router, models.router, log_evidence.router):
        app.include_router(router)
    app.add_middleware(log_evidence.LogEvidenceFastPath)
    return app
