"""Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.dependencies import MetricsDep, require_token

router = APIRouter(tags=["operations"], dependencies=[Depends(require_token)])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)
