"""The wire protocol without I/O: what both clients send, how they read answers and when to retry.

`POST /v1/models/{name}/log-evidence` takes `{"parameters": (n, P), "gradient": bool}` as JSON
(nested lists) or msgpack (arrays as `{"shape", "dtype": "<f8", "data": <raw little-endian
bytes>}`) and answers `{"log_evidence": (n,), "gradient": (n, P) | null, "status": [str]}`.
Errors are JSON `{"detail": str}`.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from client.errors import ServiceError

JSON = "application/json"
MSGPACK = "application/msgpack"
TRANSPORTS = {"json": JSON, "msgpack": MSGPACK}
# Overload or a gateway in between: evaluation is a pure function, so asking again is safe.
RETRY_STATUSES = frozenset({502, 503, 504})
# The longest JSON number a float64 becomes: sign, 17 digits, point and a 3-digit exponent.
_LONGEST_FLOAT = -1.2345678901234567e-300
# Room for what grows with the number of points besides the values (msgpack's bin and shape
# headers, a few bytes) and for the transport's rounding.
_BODY_SLACK = 64


@dataclass(frozen=True)
class Evaluation:
    """Answers row-aligned with the points sent.

    log_evidence: (n,) float64, `-inf` wherever the service computed nothing finite.
    gradient: (n, P) d log-evidence / d parameters when asked for (NaN rows where not computed).
    status: per point, "ok", "invalid: <reason>" (not computed) or "non_finite: <what>".
    """

    log_evidence: np.ndarray
    gradient: np.ndarray | None
    status: tuple[str, ...]

    @property
    def ok(self) -> np.ndarray:
        """(n,) bool: the point was computed and is finite."""
        return np.array([s == "ok" for s in self.status], dtype=bool)

    @staticmethod
    def concatenate(parts: list[Evaluation]) -> Evaluation:
        """One evaluation of the points of `parts` in order (e.g. the chunks of one batch)."""
        if len(parts) == 1:
            return parts[0]
        gradient = None if parts[0].gradient is None else np.concatenate([p.gradient for p in parts])
        return Evaluation(np.concatenate([p.log_evidence for p in parts]), gradient,
                          tuple(s for p in parts for s in p.status))


def as_points(theta: Any, n_params: int) -> np.ndarray:
    """(P,) or (n, P) finite numbers as a C-contiguous (n, P) float64 array; else `ValueError`."""
    try:
        points = np.array(theta, dtype=np.float64, ndmin=1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"theta must be numbers of shape (P,) or (n, P): {error}") from None
    if points.ndim == 1:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != n_params:
        raise ValueError(
            f"theta must have shape ({n_params},) or (n, {n_params}) for this model, "
            f"got {np.shape(theta)}"
        )
    if points.shape[0] == 0:
        raise ValueError("theta holds no points")
    bad = np.argwhere(~np.isfinite(points))
    if len(bad):
        row, column = map(int, bad[0])
        raise ValueError(f"theta[{row}, {column}] is {points[row, column]}; every value must be finite")
    return np.ascontiguousarray(points)


def chunk_size(max_request_points: int, max_body_bytes: int, n_params: int, media: str) -> int:
    """The most points one request may carry under both the point and the body limits.

    The body's size is measured on the encoder itself with the longest numbers there are, so
    brackets, separators and keys count as they are sent: a body of n points is the body of one
    plus n - 1 times what each further point adds.
    """
    one, two = (len(encode_request(np.full((n, n_params), _LONGEST_FLOAT), False, media)[0])
                for n in (1, 2))
    by_body = (max_body_bytes - _BODY_SLACK - one) // (two - one) + 1
    return max(1, min(max_request_points, by_body))


def encode_request(points: np.ndarray, gradient: bool, media: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one log-evidence request of `points` (n, P)."""
    if media == MSGPACK:
        parameters = {"shape": list(points.shape), "dtype": "<f8",
                      "data": points.astype("<f8").tobytes()}
        body = msgpack.packb({"parameters": parameters, "gradient": gradient}, use_bin_type=True)
    else:  # float repr round-trips exactly through JSON
        body = json.dumps({"parameters": points.tolist(), "gradient": gradient}).encode()
    return body, {"Content-Type": media, "Accept": media}


def decode_evaluation(content: bytes, content_type: str | None, n: int, n_params: int) -> Evaluation:
    """Read a 200 answer for `n` points; non-finite log-evidence becomes -inf."""
    media = (content_type or JSON).split(";", 1)[0].strip().lower()
    try:
        if media == MSGPACK:
            answer = msgpack.unpackb(content, raw=False)
            values = _unpack_array(answer["log_evidence"])
            gradient = None if answer.get("gradient") is None else _unpack_array(answer["gradient"])
        else:
            answer = json.loads(content)
            values = np.array([math.nan if v is None else v for v in answer["log_evidence"]], float)
            gradient = answer.get("gradient")
            if gradient is not None:
                gradient = np.array([[math.nan] * n_params if row is None else
                                     [math.nan if g is None else g for g in row] for row in gradient],
                                    dtype=np.float64).reshape(-1, n_params)
        status = tuple(answer["status"])
    except (KeyError, TypeError, ValueError, msgpack.UnpackException) as error:
        raise ServiceError(200, f"unreadable answer from the service ({media}): {error!r}") from None
    wrong_gradient = gradient is not None and gradient.shape != (n, n_params)
    if values.shape != (n,) or len(status) != n or wrong_gradient:
        raise ServiceError(200, f"the service answered for {values.shape} points; {n} were sent")
    return Evaluation(np.where(np.isfinite(values), values, -np.inf), gradient, status)


def _unpack_array(obj: dict[str, Any]) -> np.ndarray:
    if obj.get("dtype") != "<f8":
        raise ValueError(f"unexpected array dtype {obj.get('dtype')!r}")
    return np.frombuffer(obj["data"], dtype="<f8").reshape(obj["shape"]).astype(np.float64)


def error_detail(content: bytes) -> str:
    """The `detail` of an error answer, or its start if it is not the usual JSON."""
    try:
        detail = json.loads(content)["detail"]
        return detail if isinstance(detail, str) else json.dumps(detail)
    except (ValueError, KeyError, TypeError):
        return content[:300].decode(errors="replace") or "(empty answer)"


def retry_after_seconds(header: str | None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring `Retry-After`, bounded in attempts and time.

    Attempt k (0-based) that failed waits `max(Retry-After, initial_delay * 2**k * U(0.5, 1))`,
    at most `max_delay` unless the service asked for longer; no retry is made once `max_attempts`
    requests were sent or when the wait would end beyond `max_total` seconds after the first try.
    """

    max_attempts: int = 10
    initial_delay: float = 0.1
    max_delay: float = 10.0
    max_total: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, elapsed: float) -> float | None:
        """Seconds to wait before the next try after failed `attempt`, or None to give up."""
        if attempt + 1 >= self.max_attempts:
            return None
        backoff = min(self.max_delay, self.initial_delay * 2**attempt) * random.uniform(0.5, 1.0)
        wait = max(backoff, retry_after or 0.0)
        return None if elapsed + wait > self.max_total else wait


@dataclass(frozen=True)
class CallStats:
    """What a client has done: `calls` to evaluate (log_evidence, value_and_grad), `points` sent in
    them, HTTP `requests` (chunks and retries included) and `retries`."""

    calls: int = 0
    points: int = 0
    requests: int = 0
    retries: int = 0

    @property
    def mean_points_per_call(self) -> float:
        return self.points / self.calls if self.calls else 0.0


class StatsCounter:
    """Thread-safe counters behind `Client.stats` (several threads may share one client)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = CallStats()

    def add(self, **increments: int) -> None:
        with self._lock:
            self._stats = CallStats(**{
                name: getattr(self._stats, name) + increments.get(name, 0)
                for name in CallStats.__dataclass_fields__
            })

    def snapshot(self) -> CallStats:
        return self._stats
