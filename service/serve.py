"""Run the service under uvicorn (what `lensserve serve` does)."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from pathlib import Path

from service.environment import set_default_environment


def serve(config_file: str | Path | None = None, **overrides: object) -> None:
    """Load settings (environment, then `config_file`, then `overrides`) and serve until SIGTERM.

    On SIGINT/SIGTERM uvicorn stops accepting connections and waits for in-flight requests; the
    lifespan then drains the batcher. All of it within `shutdown_grace_s` of the signal: if a
    batch is still running then (stuck), the process exits with status 1 rather than wait for it.
    """
    set_default_environment()  # `lensserve` set it before any import; this is for other callers

    from service.app import create_app
    from service.settings import load_settings

    settings = load_settings(config_file, **{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_app(create_app(settings), settings)


# Orchestrators' probes and Prometheus' scrapes: every few seconds, for as long as the service runs.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ProbesOnlyAtDebug(logging.Filter):
    """Keeps uvicorn's access-log lines of probe requests (`PROBE_PATHS`) out of the log unless
    the access log is at debug: at info they would bury the requests that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs (client address, method, path with query, HTTP version, status).
        if isinstance(record.args, tuple) and len(record.args) == 5:
            path = str(record.args[2]).partition("?")[0]
            if path in PROBE_PATHS:
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def logging_config() -> dict:
    """uvicorn's own logging configuration with `ProbesOnlyAtDebug` on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["probes"] = {"()": ProbesOnlyAtDebug}
    config["handlers"]["access"]["filters"] = ["probes"]
    return config


def uvicorn_config(app, settings, **options):
    """uvicorn's configuration for `app`: the connection limits (`service.connections`), the
    shutdown grace from `settings` and the access log without probes; `options` go to
    `uvicorn.Config` as they are."""
    import uvicorn

    from service.connections import ConnectionLimits, connection_cap, limited_protocol

    limits = ConnectionLimits(connection_cap(settings.max_connections), settings.header_timeout_s,
                              settings.body_timeout_s, settings.retry_after_s)
    return uvicorn.Config(
        app,
        http=limited_protocol(limits),
        ws="none",  # no websockets; also avoids importing the websockets package
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s)),
        log_config=logging_config(),
        **{"log_level": settings.log_level, **options},
    )


def run_app(app, settings) -> None:
    """Serve `app` (from `create_app(settings)`) under uvicorn until a signal; see `serve`."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Starts the shutdown clock at the first signal, for the lifespan's share of the grace,
        and exits with `app.state.exit_code` when a batch was still stuck at the end of it
        (uvicorn would raise the signal again: status -15 whether or not all went well)."""

        def handle_exit(self, sig, frame) -> None:
            if not self.should_exit:
                app.state.shutdown_deadline = time.monotonic() + settings.shutdown_grace_s
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                _exit_if_stuck(app)

    server = GracefulServer(uvicorn_config(app, settings, host=settings.host, port=settings.port))
    server.run()
    if not server.started:
        raise SystemExit(3)  # start-up failed (logged): uvicorn's own status for it
    _exit_if_stuck(app)


def _exit_if_stuck(app) -> None:
    if app.state.exit_code:
        logging.shutdown()
        # A stuck batch holds a thread inside XLA: the interpreter's exit would wait for it.
        os._exit(app.state.exit_code)
