"""Wire formats: JSON and msgpack codecs for the log-evidence endpoint.

msgpack arrays are maps `{"shape": [...], "dtype": "<f8", "data": <bin>}` whose data are the raw
little-endian float64 bytes in C order; everything else is plain msgpack (maps, lists, strings,
bools). Nothing from the wire is ever unpickled or turned into an object other than these.
JSON cannot carry NaN or infinities: non-finite answers are `null` and the status says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from pydantic import ValidationError

from service.schemas import LogEvidenceRequest

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = (MSGPACK, "application/x-msgpack", "application/vnd.msgpack")
_FLOAT64_LE = np.dtype("<f8")


class WireError(Exception):
    """A request the service cannot read; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DecodedRequest:
    points: np.ndarray  # (n, P) float64, all finite
    gradient: bool


@dataclass(frozen=True)
class Evaluation:
    """Answers row-aligned with a request's points."""

    log_evidence: np.ndarray  # (n,), NaN where not computed
    gradient: np.ndarray | None  # (n, P)
    status: list[str]


def media_type(header: str | None) -> str | None:
    """`JSON`, `MSGPACK`, or None for anything else; a missing header counts as JSON."""
    if not header:
        return JSON
    kind = header.split(";", 1)[0].strip().lower()
    if kind == JSON:
        return JSON
    if kind in _MSGPACK_TYPES:
        return MSGPACK
    return None


def response_media_type(accept: str | None, request_type: str) -> str:
    """Answer in the type the client accepts, preferring the one it sent."""
    if not accept:
        return request_type
    offered = [media_type(part) for part in accept.split(",")]
    if request_type in offered or "*/*" in accept:
        return request_type
    return next((t for t in offered if t is not None), request_type)


def decode_request(body: bytes, content_type: str) -> DecodedRequest:
    """Parse and validate a log-evidence request body; raises `WireError` (415 or 422)."""
    kind = media_type(content_type)
    if kind is None:
        raise WireError(415, f"unsupported Content-Type {content_type!r}; use {JSON} or {MSGPACK}")
    try:
        if kind == JSON:
            request = LogEvidenceRequest.model_validate_json(body)
            points = _rows_to_array(request.parameters)
        else:
            obj = _unpack_map(body)
            packed = obj.get("parameters")
            if isinstance(packed, dict):
                points = unpack_array(packed, "parameters")
                # The other fields are validated by the schema with an empty placeholder.
                request = LogEvidenceRequest.model_validate({**obj, "parameters": []})
            else:
                request = LogEvidenceRequest.model_validate(obj)
                points = _rows_to_array(request.parameters)
    except ValidationError as error:
        raise WireError(422, _validation_message(error)) from None
    return DecodedRequest(_check_points(points), request.gradient)


def encode_evaluation(evaluation: Evaluation, kind: str) -> bytes:
    if kind == MSGPACK:
        return msgpack.packb(
            {
                "log_evidence": pack_array(evaluation.log_evidence),
                "gradient": None if evaluation.gradient is None
                else pack_array(evaluation.gradient),
                "status": evaluation.status,
            },
            use_bin_type=True,
        )
    gradient = None
    if evaluation.gradient is not None:
        gradient = [
            _finite_or_none(row) if status == "ok" or status.startswith("non_finite") else None
            for row, status in zip(evaluation.gradient, evaluation.status, strict=True)
        ]
    return json.dumps(
        {
            "log_evidence": _finite_or_none(evaluation.log_evidence),
            "gradient": gradient,
            "status": evaluation.status,
        },
        allow_nan=False,
        separators=(",", ":"),
    ).encode()


def pack_array(array: np.ndarray) -> dict[str, Any]:
    """A float64 array as a msgpack-ready map of shape, dtype and raw little-endian bytes."""
    array = np.ascontiguousarray(array, dtype=_FLOAT64_LE)
    return {"shape": list(array.shape), "dtype": "<f8", "data": array.tobytes()}


def unpack_array(obj: Any, what: str = "array") -> np.ndarray:
    """Inverse of `pack_array`; raises `WireError` (422) naming what is wrong."""
    if not isinstance(obj, dict) or set(obj) - {"shape", "dtype", "data"}:
        raise WireError(422, f"{what} must be a map with keys shape, dtype and data")
    shape, data = obj.get("shape"), obj.get("data")
    if obj.get("dtype", "<f8") != "<f8":
        raise WireError(422, f"{what}.dtype must be '<f8' (little-endian float64)")
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise WireError(422, f"{what}.shape must be a list of non-negative integers")
    if not isinstance(data, bytes):
        raise WireError(422, f"{what}.data must be binary (msgpack bin)")
    expected = int(np.prod(shape, dtype=np.int64)) * 8
    if len(data) != expected:
        raise WireError(
            422, f"{what}.data holds {len(data)} bytes; shape {shape} of float64 needs {expected}"
        )
    return np.frombuffer(data, dtype=_FLOAT64_LE).reshape(shape).astype(np.float64)


def _unpack_map(body: bytes) -> dict[str, Any]:
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
    except WireError:
        raise
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise WireError(
            422, f"body is not valid msgpack: {error or type(error).__name__}"
        ) from None
    if not isinstance(obj, dict):
        raise WireError(422, "body must be a msgpack map with keys parameters and gradient")
    return obj


def _refuse_ext(code: int, data: bytes) -> None:
    raise WireError(422, f"msgpack extension types are not accepted (got type {code})")


def _rows_to_array(rows: list[list[float]]) -> np.ndarray:
    if not rows:
        return np.empty((0, 0))
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        first = len(rows[0])
        bad = next(i for i, row in enumerate(rows) if len(row) != first)
        raise WireError(
            422, f"parameters must be rectangular: row 0 has {first} values, row {bad} has "
            f"{len(rows[bad])}"
        )
    return np.asarray(rows, dtype=np.float64)


def _check_points(points: np.ndarray) -> np.ndarray:
    if points.ndim == 1:
        points = points[None, :]
    if points.ndim != 2:
        raise WireError(422, f"parameters must be (n, P) or (P,), got shape {list(points.shape)}")
    if points.shape[0] == 0 or points.shape[1] == 0:
        raise WireError(422, f"parameters is empty (shape {list(points.shape)})")
    finite = np.isfinite(points)
    if not finite.all():
        row, column = map(int, np.argwhere(~finite)[0])
        raise WireError(
            422, f"parameters[{row}][{column}] is {points[row, column]}; every value must be finite"
        )
    return points


def _validation_message(error: ValidationError) -> str:
    messages = []
    for item in error.errors()[:3]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        messages.append(f"{where.lstrip('.') or 'body'}: {item['msg']}")
    more = error.error_count() - len(messages)
    return "; ".join(messages) + (f" (and {more} more)" if more > 0 else "")


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values.tolist()]
