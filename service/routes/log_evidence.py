"""`POST /v1/models/{name}/log-evidence`, the hot path.

A sampler client sends a point, waits for its answer and sends the next, so on a CPU node the
event loop handles about as many requests a second as the device evaluates points, and every
millisecond of its CPU is taken from the dispatchers. FastAPI's routing and its request/response
wrapping around an endpoint cost about as much of that CPU as the endpoint itself (py-spy, 64
clients, small MGE model). `LogEvidenceFastPath`, an ASGI middleware, therefore answers this one
route straight from the ASGI messages; everything else goes on to FastAPI's router. FastAPI still
documents the route (OpenAPI) through `router`, whose handler runs the same `answer`, so the
endpoint works the same with or without the middleware.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from starlette.datastructures import Headers

from service.batcher import BatcherClosed, BatchStuck, DeadlineExceeded, QueueClosed, QueueFull
from service.dependencies import check_token, running_evaluator
from service.evaluation import (
    ClientGone,
    GradientsDisabled,
    NotReady,
    UnknownModel,
    WrongParameterCount,
)
from service.schemas import (
    EXAMPLE_MGE_POINT,
    EXAMPLE_PIXELIZED_POINT,
    ErrorResponse,
    LogEvidenceRequest,
    LogEvidenceResponse,
)
from service.wire import (
    JSON,
    MSGPACK,
    DecodedRequest,
    RequestLimits,
    WireError,
    decode_request,
    encode_evaluation,
    media_type,
    response_media_type,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]

_PATH = re.compile(r"/v1/models/([^/]+)/log-evidence")
# A one-point request is a few hundred bytes; larger bodies are decoded on a worker thread.
_INLINE_DECODE_BYTES = 64 * 1024
_MSGPACK_DOC = (
    "msgpack map {parameters: {shape: [n, P], dtype: '<f8', data: <bin, raw little-endian "
    "float64>}, gradient: bool}; nested lists of floats are accepted too. Answers are maps "
    "{log_evidence: <array>, gradient: <array> | nil, status: [str]} with arrays packed the same "
    "way (non-finite values kept as floats)."
)
_JSON_EXAMPLES = {
    "one point": {"summary": "one point of an mge model (15 parameters): the embedded dataset's "
                  "truth", "value": {"parameters": [EXAMPLE_MGE_POINT]}},
    "pixelized": {"summary": "one point of a rectangular or delaunay model (12 parameters)",
                  "value": {"parameters": [EXAMPLE_PIXELIZED_POINT]}},
    "gradient": {"summary": "two points of an mge model and their gradients (a service started "
                 "with gradient = true)",
                 "value": {"parameters": [EXAMPLE_MGE_POINT, EXAMPLE_MGE_POINT], "gradient": True}},
    "invalid point": {
        "summary": "an mge point with a negative Einstein radius: answered `invalid: ...`, "
        "log_evidence null",
        "value": {"parameters": [EXAMPLE_MGE_POINT[:8] + [-1.6] + EXAMPLE_MGE_POINT[9:]]},
    },
}
ModelName = Annotated[
    str, Path(description="a served model's name (`GET /v1/models`)", examples=["mge"])
]
ERRORS = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        401: "missing, wrong or repeated bearer token",
        404: "unknown model",
        413: "body, number of points or a declared msgpack size too large",
        415: "unsupported Content-Type",
        422: "malformed body, a parameter that is not a number, wrong shape, non-finite input, "
        "wrong parameter count, or a "
        "gradient asked of a service started without gradients",
        503: "queue full, model still compiling, or a batch stuck (see Retry-After)",
        504: "the request's deadline passed while it was queued",
    }.items()
}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, independent of the framework that sends it."""

    status: int
    body: bytes
    media_type: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in self.headers.items()),
        ]


async def answer(state: Any, name: str, headers: Headers, receive: Receive) -> Answer:
    """Answer one log-evidence request. `state` is the app's state; `headers` the request's;
    `receive` is the request's ASGI receive (body, then disconnect)."""
    settings = state.settings
    try:
        check_token(settings, headers.getlist("authorization"))
        evaluator = running_evaluator(state)
    except HTTPException as error:
        return _error(error.status_code, str(error.detail), error.headers)
    metrics = evaluator.metrics
    try:
        limits = RequestLimits(settings.max_request_points, len(evaluator.model(name).parameter_names))
        body = await _read_body(headers.get("content-length"), receive, settings.max_body_bytes)
        decoded = await _decode(body, headers.get("content-type"), limits)
        evaluation = await evaluator.evaluate(
            name, decoded.points, decoded.gradient, client_gone=lambda: _disconnected(receive)
        )
    except (UnknownModel, QueueClosed) as error:  # QueueClosed: being deleted
        metrics.rejections.labels("", "unknown_model").inc()
        return _error(404, str(error))
    except (WireError, WrongParameterCount, GradientsDisabled) as error:
        code = getattr(error, "status", 422)
        reason = "too_large" if code == 413 else "invalid_input"
        metrics.requests.labels(name, reason).inc()
        metrics.rejections.labels(name, reason).inc()
        return _error(code, str(error))
    except (QueueFull, NotReady, BatcherClosed, BatchStuck) as error:
        reason = {QueueFull: "queue_full", NotReady: "not_ready", BatcherClosed: "shutting_down",
                  BatchStuck: "stuck"}
        metrics.requests.labels(name, "rejected").inc()
        metrics.rejections.labels(name, reason[type(error)]).inc()
        return _error(503, str(error), {"Retry-After": str(settings.retry_after_s)})
    except DeadlineExceeded as error:
        metrics.requests.labels(name, "timeout").inc()
        return _error(504, str(error))
    except ClientGone as error:
        metrics.requests.labels(name, "cancelled").inc()
        return _error(499, str(error))  # nobody reads it; the server needs an answer
    except Exception as error:  # noqa: BLE001 - the batch failed on the device
        metrics.requests.labels(name, "error").inc()
        return _error(500, f"evaluation failed: {type(error).__name__}: {error}")
    metrics.requests.labels(name, "ok").inc()
    answer_type = response_media_type(
        headers.get("accept"), media_type(headers.get("content-type")) or ""
    )
    return Answer(200, encode_evaluation(evaluation, answer_type), answer_type)


class LogEvidenceFastPath:
    """ASGI middleware: answers `POST /v1/models/{name}/log-evidence` itself (see the module
    docstring) and passes every other request, and the lifespan, on to `app`."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        result = await answer(scope["app"].state, match[1], Headers(scope=scope), receive)
        await send({"type": "http.response.start", "status": result.status,
                    "headers": result.asgi_headers()})
        await send({"type": "http.response.body", "body": result.body})


router = APIRouter(prefix="/v1", tags=["models"])


@router.post(
    "/models/{name}/log-evidence",
    summary="Log-evidence (and gradient) of one or many parameter vectors",
    response_class=Response,
    responses={
        200: {
            "model": LogEvidenceResponse,
            "content": {MSGPACK: {"schema": {"type": "string", "format": "binary"}}},
            "description": "answers row-aligned with the request; JSON or msgpack (Accept)",
        },
        **ERRORS,
    },
    openapi_extra={
        "security": [{"HTTPBearer": []}],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": LogEvidenceRequest.model_json_schema(),
                       "examples": _JSON_EXAMPLES},
                MSGPACK: {"schema": {"type": "string", "format": "binary",
                                     "description": _MSGPACK_DOC}},
            },
        }
    },
)
async def log_evidence(name: ModelName, request: Request) -> Response:
    result = await answer(request.app.state, name, request.headers, request.receive)
    return Response(result.body, result.status, dict(result.headers), result.media_type)


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps({"detail": detail}).encode(), JSON, dict(headers or {}))


async def _read_body(declared: str | None, receive: Receive, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected while sending its request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WireError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _decode(body: bytes, content_type: str | None, limits: RequestLimits) -> DecodedRequest:
    """Decode small bodies inline and large ones on a worker thread: parsing megabytes would hold
    the event loop, and with it `/healthz` and every other client, for up to seconds."""
    if len(body) <= _INLINE_DECODE_BYTES:
        return decode_request(body, content_type, limits)
    return await asyncio.to_thread(decode_request, body, content_type, limits)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (the server sends http.disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
