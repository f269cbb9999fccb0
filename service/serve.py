"""Run the service under uvicorn (what `lensserve serve` does)."""

from __future__ import annotations

import logging
from pathlib import Path

from service.environment import set_default_environment


def serve(config_file: str | Path | None = None, **overrides: object) -> None:
    """Load settings (environment, then `config_file`, then `overrides`) and serve until SIGTERM.

    On SIGINT/SIGTERM uvicorn stops accepting connections and waits for in-flight requests; the
    lifespan then drains the batcher, so every accepted request is answered.
    """
    set_default_environment()  # `lensserve` set it before any import; this is for other callers
    import uvicorn

    from service.app import create_app
    from service.settings import load_settings

    settings = load_settings(config_file, **{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="none",  # no websockets; also avoids importing the websockets package
        lifespan="on",
        timeout_graceful_shutdown=None,
    )
