"""Wire formats: JSON and msgpack codecs for the log-evidence endpoint.

msgpack arrays are maps `{"shape": [...], "dtype": "<f8", "data": <bin>}` whose data are the raw
little-endian float64 bytes in C order; everything else is plain msgpack (maps, lists, strings,
bools). Nothing from the wire is ever unpickled or turned into an object other than these.
JSON cannot carry NaN or infinities: non-finite answers are `null` and the status says why.

Parameters are numbers only: a string or a boolean anywhere in them is refused, never converted.
A body that declares more than a request may hold (`RequestLimits`) is refused before it is built.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
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
# No request needs more: its map has 2 keys, a packed array 3, and its longest string is a key.
_MAX_MAP_ENTRIES = 16
_MAX_STRING_BYTES = 256
_LIMIT_BREACH = re.compile(r"(\d+) exceeds max_(array|bin|map|str)_len\((\d+)\)")


class WireError(Exception):
    """A request the service cannot read; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestLimits:
    """The most one request may carry: `max_points` points of the model's `n_parameters` values."""

    max_points: int
    n_parameters: int

    def msgpack_limits(self) -> dict[str, int]:
        """msgpack's Unpacker limits: every container's declared size is checked against them
        before the container is built, so a small body cannot make millions of objects."""
        return {
            # the rows, one row (or a flat point), or a packed array's shape [n, P]
            "max_array_len": max(self.max_points, self.n_parameters, 2),
            "max_bin_len": self.max_points * self.n_parameters * _FLOAT64_LE.itemsize,
            "max_map_len": _MAX_MAP_ENTRIES,
            "max_str_len": _MAX_STRING_BYTES,
        }

    def too_many_points(self, points: str) -> str:
        return (f"{points} in one request; the limit is {self.max_points} (max_request_points; "
                "split the batch)")


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


def decode_request(body: bytes, content_type: str | None, limits: RequestLimits) -> DecodedRequest:
    """Parse and validate a log-evidence request body; raises `WireError` (413, 415 or 422)."""
    kind = media_type(content_type)
    if kind is None:
        raise WireError(415, f"unsupported Content-Type {content_type!r}; use {JSON} or {MSGPACK}")
    try:
        if kind == JSON:
            _check_json_row_count(body, limits)
            request = LogEvidenceRequest.model_validate_json(body)
            points = _rows_to_array(request.parameters)
        else:
            obj = _unpack_map(body, limits)
            packed = obj.get("parameters")
            if isinstance(packed, dict):
                points = unpack_array(packed, "parameters")
                # The other fields are validated by the schema with an empty placeholder.
                request = LogEvidenceRequest.model_validate({**obj, "parameters": []})
            else:
                request = LogEvidenceRequest.model_validate(obj)
                points = _rows_to_array(request.parameters)
    except ValidationError as error:
        raise WireError(422, validation_message(error)) from None
    return DecodedRequest(_check_points(points, limits), request.gradient)


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
    """Inverse of `pack_array` for the vectors and matrices the API carries; raises `WireError`
    (422) naming what is wrong."""
    if not isinstance(obj, dict) or set(obj) - {"shape", "dtype", "data"}:
        raise WireError(422, f"{what} must be a map with keys shape, dtype and data")
    shape, data = obj.get("shape"), obj.get("data")
    if obj.get("dtype", "<f8") != "<f8":
        raise WireError(422, f"{what}.dtype must be '<f8' (little-endian float64)")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 2 and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    )):
        raise WireError(
            422, f"{what}.shape must be a list of one or two non-negative integers, got "
            f"{reprlib.repr(shape)}"
        )
    if not isinstance(data, bytes):
        raise WireError(422, f"{what}.data must be binary (msgpack bin)")
    # In Python integers: a product of declared dimensions can exceed int64, where numpy wraps.
    expected = math.prod(shape) * _FLOAT64_LE.itemsize
    if len(data) != expected:
        raise WireError(
            422, f"{what}.data holds {len(data)} bytes; shape {shape} of float64 needs {expected}"
        )
    if expected == 0:  # numpy cannot reshape to every empty shape, e.g. [0, 2**63]
        raise _empty(what, shape)
    return np.frombuffer(data, dtype=_FLOAT64_LE).reshape(shape).astype(np.float64)


def _unpack_map(body: bytes, limits: RequestLimits) -> dict[str, Any]:
    # The body itself is already within max_body_bytes (read with that limit), so msgpack's
    # max_buffer_size, which bounds only the bytes it holds, adds nothing here.
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_refuse_ext,
                              **limits.msgpack_limits())
    except WireError:
        raise
    except msgpack.StackError:
        raise WireError(
            422, "body is not a request: its msgpack arrays and maps nest deeper than the decoder "
            "allows (a request nests three levels)"
        ) from None
    except ValueError as error:
        raise _limit_breach(error, limits) or _not_msgpack(error) from None
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise _not_msgpack(error) from None
    if not isinstance(obj, dict):
        raise WireError(422, "body must be a msgpack map with keys parameters and gradient")
    return obj


def _limit_breach(error: ValueError, limits: RequestLimits) -> WireError | None:
    """A 413 naming the limit when `error` is msgpack refusing a declared size, else None."""
    match = _LIMIT_BREACH.fullmatch(str(error))
    if match is None:
        return None
    size, kind, limit = match.groups()
    held = {"array": f"an array of {size} items", "bin": f"binary data of {size} bytes",
            "map": f"a map of {size} entries", "str": f"a string of {size} bytes"}[kind]
    why = {
        "array": f"max_request_points = {limits.max_points} points, or the model's "
        f"{limits.n_parameters} parameters in a point",
        "bin": f"max_request_points = {limits.max_points} points of the model's "
        f"{limits.n_parameters} float64 parameters",
    }.get(kind, "no request needs more")
    return WireError(413, f"the msgpack body holds {held}; at most {limit} are accepted: {why}")


def _not_msgpack(error: Exception) -> WireError:
    return WireError(422, f"body is not valid msgpack: {str(error) or type(error).__name__}")


def _refuse_ext(code: int, data: bytes) -> None:
    raise WireError(422, f"msgpack extension types are not accepted (got type {code})")


def _check_json_row_count(body: bytes, limits: RequestLimits) -> None:
    """Refuse, before parsing, a JSON body with room for more than `max_points` points.

    In a request every `[` byte opens `parameters` or one of its rows (strings are refused
    everywhere but in keys), so n points take n + 1 of them; counting them costs far less than
    building the millions of rows a large body can hold.
    """
    arrays = body.count(b"[")
    if arrays > limits.max_points + 1:
        raise WireError(
            413, limits.too_many_points(f"{arrays - 1} points (the body's {arrays} JSON arrays)")
        )


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


def _check_points(points: np.ndarray, limits: RequestLimits) -> np.ndarray:
    """`points` (n, P) or (P,) as (n, P), or a `WireError` if empty, too many or not finite."""
    if points.ndim == 1:
        points = points[None, :]
    if points.size == 0:
        raise _empty("parameters", list(points.shape))
    if len(points) > limits.max_points:
        raise WireError(413, limits.too_many_points(f"{len(points)} points"))
    finite = np.isfinite(points)
    if not finite.all():
        row, column = map(int, np.argwhere(~finite)[0])
        raise WireError(
            422, f"parameters[{row}][{column}] is {points[row, column]}; every value must be finite"
        )
    return points


def _empty(what: str, shape: list[int]) -> WireError:
    return WireError(422, f"{what} is empty (shape {shape})")


def validation_message(error: ValidationError) -> str:
    messages = []
    for item in error.errors()[:3]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        got = item["input"]  # shown when a scalar: whole bodies and maps say nothing more
        shown = f" (got {reprlib.repr(got)})" if isinstance(got, str | bool | int | float | None) else ""
        messages.append(f"{where.lstrip('.') or 'body'}: {item['msg']}{shown}")
    more = error.error_count() - len(messages)
    return "; ".join(messages) + (f" (and {more} more)" if more > 0 else "")


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values.tolist()]
