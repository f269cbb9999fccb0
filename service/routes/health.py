"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service.dependencies import SettingsDep, require_token

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive (touches no device; needs no token)")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="Every model answers, no batch is stuck, and every queue is below its limit",
    description="200 once every configured model has at least its smallest bucket compiled "
    "(larger buckets may still be compiling: `state` per model in `/v1/models`; models "
    "registered at runtime do not count), while no batch runs past the watchdog's bound and no "
    "queue is full; else 503 with the reason.",
    dependencies=[Depends(require_token)],
    responses={503: {"description": "not ready: starting, compiling, failed, a batch stuck, "
                                    "or a queue full"}},
)
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    evaluator = getattr(request.app.state, "evaluator", None)
    if evaluator is None:
        return _not_ready("starting")
    engine, batcher = evaluator.engine, evaluator.batcher
    # A model registered at runtime compiling, or failed, leaves the others to serve.
    configured = [name for name in list(engine.models) if name not in request.app.state.registry]
    waiting = [name for name in configured if not engine.model_ready(name)]
    failed = {name: engine.model_failure(name) for name in waiting
              if engine.model_failure(name) is not None}
    if failed:
        return _not_ready("failed: " + "; ".join(f"{name}: {why}" for name, why in failed.items()))
    if waiting:
        return _not_ready(f"compiling: {', '.join(waiting)}")
    if batcher.stuck:
        return _not_ready("a batch is stuck past the watchdog's bound (see the log)")
    full = [name for name in list(engine.models)
            if batcher.queued_points(name) >= settings.max_queue_points]
    if full:
        return _not_ready(f"queue full: {', '.join(full)}")
    return JSONResponse({"ready": True, "models": {
        name: engine.model_state(name) for name in list(engine.models)}})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)
