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
    summary="Every bucket of every model is compiled and every queue is below its limit",
    dependencies=[Depends(require_token)],
    responses={503: {"description": "not ready: still compiling, failed, or queues full"}},
)
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    evaluator = getattr(request.app.state, "evaluator", None)
    if evaluator is None:
        return JSONResponse({"ready": False, "reason": "starting"}, status_code=503)
    engine, batcher = evaluator.engine, evaluator.batcher
    if engine.compile_error is not None:
        reason = f"compilation failed: {engine.compile_error}"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)
    compiling = [name for name in engine.models if not engine.model_ready(name)]
    if compiling:
        reason = f"compiling: {', '.join(compiling)}"
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)
    full = [name for name in engine.models
            if batcher.queued_points(name) >= settings.max_queue_points]
    if full:
        return JSONResponse({"ready": False, "reason": f"queue full: {', '.join(full)}"},
                            status_code=503)
    return JSONResponse({"ready": True, "models": list(engine.models)})
