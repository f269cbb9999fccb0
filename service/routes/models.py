"""The models resource: describe the served models and evaluate their log-evidence."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from service.batcher import BatcherClosed, DeadlineExceeded, QueueFull
from service.dependencies import (
    EvaluatorDep,
    SettingsDep,
    bearer_credentials,
    check_token,
    require_token,
    running_evaluator,
)
from service.evaluation import ClientGone, Evaluator, NotReady, UnknownModel, WrongParameterCount
from service.schemas import (
    ErrorResponse,
    Limits,
    LogEvidenceRequest,
    LogEvidenceResponse,
    ModelInfo,
    ModelsResponse,
)
from service.wire import (
    MSGPACK,
    WireError,
    decode_request,
    encode_evaluation,
    media_type,
    response_media_type,
)

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_token)])
# The hot path: no FastAPI dependencies (see service.dependencies); it checks the token itself.
evaluation_router = APIRouter(prefix="/v1", tags=["models"])

_MSGPACK_DOC = (
    "msgpack map {parameters: {shape: [n, P], dtype: '<f8', data: <bin, raw little-endian "
    "float64>}, gradient: bool}; nested lists of floats are accepted too. Answers are maps "
    "{log_evidence: <array>, gradient: <array> | nil, status: [str]} with arrays packed the same "
    "way (non-finite values kept as floats)."
)
_ERRORS = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        401: "missing or wrong bearer token",
        404: "unknown model",
        413: "body or number of points too large",
        415: "unsupported Content-Type",
        422: "malformed body, wrong shape, non-finite input or wrong parameter count",
        503: "queue full or model still compiling (see Retry-After)",
        504: "the request's deadline passed while it was queued",
    }.items()
}


def _info(name: str, evaluator: Evaluator) -> ModelInfo:
    description = evaluator.model(name).describe()
    return ModelInfo(
        name=name, ready=evaluator.engine.model_ready(name), gradient=evaluator.engine.gradient,
        buckets=list(evaluator.engine.buckets[name]), **description,
    )


@router.get("/models", summary="The served models, their parameters, priors and dataset")
async def list_models(
    evaluator: EvaluatorDep,
    settings: SettingsDep,
) -> ModelsResponse:
    return ModelsResponse(
        models=[_info(name, evaluator) for name in evaluator.engine.models],
        limits=Limits(
            max_request_points=settings.max_request_points,
            max_body_bytes=settings.max_body_bytes,
            max_batch_size=settings.max_batch_size,
            buckets=list(settings.buckets),
        ),
    )


@router.get("/models/{name}", summary="One served model", responses={404: _ERRORS[404]})
async def get_model(name: str, evaluator: EvaluatorDep) -> ModelInfo:
    try:
        return _info(name, evaluator)
    except UnknownModel as error:
        raise HTTPException(404, str(error)) from None


@evaluation_router.post(
    "/models/{name}/log-evidence",
    summary="Log-evidence (and gradient) of one or many parameter vectors",
    response_class=Response,
    responses={
        200: {
            "model": LogEvidenceResponse,
            "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
            "description": "answers row-aligned with the request; JSON or msgpack (Accept)",
        },
        **_ERRORS,
    },
    openapi_extra={
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LogEvidenceRequest.model_json_schema()},
                MSGPACK: {"schema": {"type": "string", "format": "binary",
                                     "description": _MSGPACK_DOC}},
            },
        }
    },
)
async def log_evidence(name: str, request: Request) -> Response:
    settings = request.app.state.settings
    check_token(settings, bearer_credentials(request.headers.get("authorization")))
    evaluator = running_evaluator(request)
    metrics = evaluator.metrics
    try:
        evaluator.model(name)
        body = await _read_body(request, settings.max_body_bytes)
        decoded = decode_request(body, request.headers.get("content-type"))
        if len(decoded.points) > settings.max_request_points:
            raise WireError(
                413, f"{len(decoded.points)} points in one request; the limit is "
                f"{settings.max_request_points} (split the batch)"
            )
        evaluation = await evaluator.evaluate(
            name, decoded.points, decoded.gradient, client_gone=lambda: _disconnected(request)
        )
    except UnknownModel as error:
        metrics.rejections.labels("", "unknown_model").inc()
        return _error(404, str(error))
    except (WireError, WrongParameterCount) as error:
        code = getattr(error, "status", 422)
        reason = "too_large" if code == 413 else "invalid_input"
        metrics.requests.labels(name, reason).inc()
        metrics.rejections.labels(name, reason).inc()
        return _error(code, str(error))
    except (QueueFull, NotReady, BatcherClosed) as error:
        reason = {QueueFull: "queue_full", NotReady: "not_ready", BatcherClosed: "shutting_down"}
        metrics.requests.labels(name, "rejected").inc()
        metrics.rejections.labels(name, reason[type(error)]).inc()
        return _error(503, str(error), {"Retry-After": str(settings.retry_after_s)})
    except DeadlineExceeded as error:
        metrics.requests.labels(name, "timeout").inc()
        return _error(504, str(error))
    except ClientGone as error:
        metrics.requests.labels(name, "cancelled").inc()
        return _error(499, str(error))  # nobody reads it; uvicorn needs an answer
    except Exception as error:  # noqa: BLE001 - the batch failed on the device
        metrics.requests.labels(name, "error").inc()
        return _error(500, f"evaluation failed: {type(error).__name__}: {error}")
    metrics.requests.labels(name, "ok").inc()
    answer_type = response_media_type(
        request.headers.get("accept"), media_type(request.headers.get("content-type")) or ""
    )
    return Response(encode_evaluation(evaluation, answer_type), media_type=answer_type)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WireError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (uvicorn sends http.disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
