"""Connection limits that uvicorn lacks: a cap on open connections and time limits on reading a
request's headers and body, so slow or silent clients can neither exhaust the file descriptors
nor hold a connection (or the shutdown) for ever.

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`) and answers
503 past `limit_concurrency` only once a request's headers are in; a connection that sends
nothing, or half a request line, stays open indefinitely (a red-team client held 20,400 of them
and the server stopped answering `/healthz`). `LimitedHttpProtocol` is uvicorn's httptools
protocol with:

- `max_connections`: a connection beyond it is answered 503 (`Retry-After`) and closed at once;
- `header_timeout_s`: from a connection's opening, or a request's first byte, to its last header;
- `body_timeout_s`: from the last header to the body's last byte.

Past a time limit the connection is closed (a request whose body was cut off is withdrawn, as if
its client had left). Connections already answering are not limited: their time is the batcher's.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Descriptors kept for everything that is not a client connection (listening socket, log and
# cache files, XLA's and Python's own) when the connection cap is derived from the process limit.
RESERVED_DESCRIPTORS = 128


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    retry_after_s: int


def descriptor_limit() -> int:
    """The process's file-descriptor limit, first raised to the hard limit where it is lower
    (the soft limit is often 1,024, too few for many samplers' connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int | None) -> int:
    """The connection cap: `configured`, or what the descriptor limit leaves; refuses a cap the
    descriptor limit cannot hold (the server would fail on `accept` instead of answering 503)."""
    room = descriptor_limit() - RESERVED_DESCRIPTORS
    if configured is None:
        return max(1, room)
    if configured > room:
        raise ValueError(
            f"max_connections {configured} needs {configured + RESERVED_DESCRIPTORS} file "
            f"descriptors; this process may open {room + RESERVED_DESCRIPTORS} (ulimit -n): raise "
            f"the limit or lower LENSSERVE_MAX_CONNECTIONS"
        )
    return configured


def limited_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with `limits` (pass it as `uvicorn.Config(http=...)`)."""

    class LimitedHttpProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._refuse(transport)
                return
            self._arm(limits.header_timeout_s)

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(limits.header_timeout_s)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(limits.body_timeout_s)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = asyncio.get_running_loop().call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _refuse(self, transport) -> None:
            message = b"too many connections; retry later"
            transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                b"retry-after: " + str(limits.retry_after_s).encode() + b"\r\n"
                b"content-length: " + str(len(message)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + message
            )
            transport.close()

    return LimitedHttpProtocol
