"""The models resource: describe the served models, register new ones, delete registered ones
(their evaluation: `routes.log_evidence`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from service.dependencies import (
    EvaluatorDep,
    MetricsDep,
    RegistryDep,
    SettingsDep,
    require_token,
)
from service.evaluation import Evaluator, UnknownModel
from service.registry import (
    ConfiguredModel,
    InvalidRegistration,
    LensRegistry,
    NameTaken,
    RateLimited,
    Registration,
    RegistryFull,
    decode_registration,
    registration_from_form,
)
from service.registry.uploads import ARRAYS, MULTIPART, is_multipart
from service.routes.log_evidence import ERRORS, ModelName
from service.schemas import (
    ErrorResponse,
    Limits,
    ModelInfo,
    ModelsResponse,
    ModelStatus,
    Registered,
    RegistrationSpec,
    Retired,
)
from service.wire import JSON, MSGPACK, WireError

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_token)])
_WIRE_OUTCOMES = {413: "too_large", 415: "unsupported"}

_ROWS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
_REGISTRATION_JSON = RegistrationSpec.model_json_schema()
_REGISTRATION_JSON["properties"].update({
    "data": {**_ROWS, "description": "(H, W) image, electrons per second"},
    "noise_map": {**_ROWS, "description": "(H, W) noise, electrons per second"},
    "psf": {**_ROWS, "description": "(h, w) PSF, odd sizes (normalised to sum 1)"},
})
_REGISTRATION_JSON["required"] = [*_REGISTRATION_JSON["required"], *ARRAYS]
_REGISTRATION_FORM = {
    "type": "object",
    "required": ["kind", "pixel_scale", *ARRAYS],
    "properties": {
        **{what: {"type": "string", "format": "binary", "description": "a FITS file (its first "
                  "image)"} for what in ARRAYS},
        **{key: {"type": "string"} for key in ("name", "kind", "pixel_scale", "mask_radius",
                                               "mass")},
        **{key: {"type": "string", "description": "JSON text"}
           for key in ("settings", "priors", "fixed", "buckets")},
    },
}
_REGISTRATION_ERRORS = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        401: ERRORS[401]["description"],
        409: "a model of that name is served already, or the registry holds max_models",
        413: "body over max_dataset_bytes, or an array declaring more",
        415: "unsupported Content-Type",
        429: "over max_registrations_per_minute (see Retry-After)",
        422: "the dataset or spec cannot make a model (the message names the problem: shapes "
        "that do not match, non-finite or non-positive noise in the mask, a PSF of even size, an "
        "unknown kind or setting, a prior or fixed value the model cannot take, ...)",
    }.items()
}


def _registration(name: str, registry: LensRegistry) -> Registered | None:
    record = registry.records.get(name)
    return None if record is None else Registered(dataset_sha256=record.dataset_sha256,
                                                  created=record.created)


def _info(name: str, evaluator: Evaluator, registry: LensRegistry) -> ModelInfo:
    description = evaluator.model(name).describe()
    engine = evaluator.engine
    return ModelInfo(
        name=name, ready=engine.model_ready(name), state=engine.model_state(name),
        gradient=engine.gradient, buckets=list(engine.buckets[name]),
        compiled_buckets=list(engine.compiled_buckets(name)),
        dropped_buckets=list(engine.dropped_buckets[name]),
        working_memory_bytes=engine.working_memory(name),
        # A stored model that failed at start-up under a configured model's name is not this one.
        registration=None if registry.failure(name) else _registration(name, registry),
        **description,
    )


def _status(name: str, request: Request, evaluator: Evaluator,
            registry: LensRegistry) -> ModelStatus:
    failure = registry.failure(name)
    return ModelStatus(
        name=name, state=f"failed: {failure}" if failure else evaluator.engine.model_state(name),
        ready=failure is None and evaluator.engine.model_ready(name),
        status_url=str(request.url_for("get_model", name=name)),
        registration=_registration(name, registry),
    )


@router.get("/models", summary="The served models, their parameters, priors and dataset")
async def list_models(
    evaluator: EvaluatorDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> ModelsResponse:
    return ModelsResponse(
        models=[_info(name, evaluator, registry) for name in list(evaluator.engine.models)],
        limits=Limits(
            max_request_points=settings.max_request_points,
            max_body_bytes=settings.max_body_bytes,
            max_batch_size=settings.max_batch_size,
            buckets=list(settings.buckets),
        ),
    )


@router.get(
    "/models/{name}",
    summary="One model: its description and state",
    description="A served model's description and `state` (`compiling`, `serving`, `ready`, or "
    "`failed: <reason>`); a registered model that could not be rebuilt at start-up (its dataset "
    "no longer validates) answers its status only, `failed: <reason>`.",
    responses={404: ERRORS[404]},
)
async def get_model(name: ModelName, request: Request, evaluator: EvaluatorDep,
                    registry: RegistryDep) -> ModelInfo | ModelStatus:
    try:
        return _info(name, evaluator, registry)
    except (UnknownModel, KeyError):  # KeyError: deleted while described
        if registry.failure(name) is not None:
            return _status(name, request, evaluator, registry)
        raise HTTPException(404, f"no model named {name!r}") from None


@router.post(
    "/models",
    summary="Register a model: a dataset sent in the request, a kind and settings",
    description="The dataset is checked as `load_imaging` checks a file and the model built "
    "before anything is stored; then it is stored in the registry (restored at every start-up) "
    "and served as `/v1/models/{name}`. 201: it answers now (a model of the same shapes, kind "
    "and settings had compiled every executable it needs: nothing was compiled). 202: it is "
    "compiling; poll `status_url` (the `Location` header) until `state` is `ready` (or "
    "`serving`, some buckets) or `failed: ...`.",
    status_code=201,
    responses={202: {"model": ModelStatus, "description": "compiling; see status_url"},
               **_REGISTRATION_ERRORS},
    openapi_extra={"requestBody": {"required": True, "content": {
        JSON: {"schema": _REGISTRATION_JSON},
        MSGPACK: {"schema": {"type": "string", "format": "binary", "description": "a msgpack map "
                             "of the same fields; data, noise_map and psf as packed arrays "
                             "{shape, dtype: '<f8', data: <bin>} (or lists of rows)"}},
        MULTIPART: {"schema": _REGISTRATION_FORM},
    }}},
)
async def register_model(request: Request, response: Response, evaluator: EvaluatorDep,
                         registry: RegistryDep, settings: SettingsDep,
                         metrics: MetricsDep) -> ModelStatus:
    try:
        registry.admit()
        body = await _read_body(request, settings.max_dataset_bytes)
        registration = await _decode(body, request.headers, settings.max_dataset_bytes)
        record = await registry.register(registration)
    except RateLimited as error:
        metrics.registrations.labels("rate_limited").inc()
        raise HTTPException(429, str(error),
                            headers={"Retry-After": str(error.retry_after)}) from None
    except WireError as error:
        metrics.registrations.labels(_WIRE_OUTCOMES.get(error.status, "invalid")).inc()
        raise HTTPException(error.status, error.message) from None
    except InvalidRegistration as error:
        metrics.registrations.labels("invalid").inc()
        raise HTTPException(422, str(error)) from None
    except (NameTaken, RegistryFull) as error:
        metrics.registrations.labels("conflict" if isinstance(error, NameTaken) else "full").inc()
        raise HTTPException(409, str(error)) from None
    status = _status(record.name, request, evaluator, registry)
    if status.state != "ready":
        response.status_code = 202
    response.headers["Location"] = status.status_url
    metrics.registrations.labels("ready" if status.state == "ready" else "compiling").inc()
    return status


@router.delete(
    "/models/{name}",
    summary="Delete a registered model",
    description="New requests for it get 404 at once; those queued are answered (within "
    "request_timeout_s); then its memory is freed and it leaves the registry. Executables it "
    "shared stay compiled for the next model of its shapes.",
    responses={404: ERRORS[404], 409: {"model": ErrorResponse,
                                       "description": "a model of the service's configuration"}},
)
async def delete_model(name: ModelName, registry: RegistryDep) -> Retired:
    try:
        drained = await registry.retire(name)
    except UnknownModel as error:
        raise HTTPException(404, str(error)) from None
    except ConfiguredModel as error:
        raise HTTPException(409, str(error)) from None
    return Retired(name=name, drained=drained)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(413, f"body of {declared} bytes exceeds max_dataset_bytes ({limit})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WireError(413, f"body exceeds max_dataset_bytes ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


async def _decode(body: bytes, headers: Headers, limit: int) -> Registration:
    """Parse off the event loop: a dataset is megabytes."""
    content_type = headers.get("content-type")
    if not is_multipart(content_type):
        return await asyncio.to_thread(decode_registration, body, content_type, limit)

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(headers, chunks(), max_files=len(ARRAYS), max_fields=16,
                                     max_part_size=64 * 1024).parse()
    except MultiPartException as error:
        raise WireError(422, f"malformed multipart body: {error.message}") from None
    try:
        return await asyncio.to_thread(registration_from_form, form)
    finally:
        await form.close()
