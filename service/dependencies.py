"""FastAPI dependencies: the objects built at start-up, reached through `app.state`.

All are `async def` although none awaits: FastAPI runs plain `def` dependencies on its thread
pool, and that hop per dependency cost more than the rest of a small request. The log-evidence
route, the hot path, goes through no FastAPI machinery at all (`service.routes.log_evidence`):
it reads the app's state and calls `check_token` itself.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from service.evaluation import Evaluator
from service.metrics import Metrics
from service.settings import ServiceSettings

_bearer = HTTPBearer(auto_error=False, description="the service token (LENSSERVE_TOKEN)")


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_evaluator(request: Request) -> Evaluator:
    return running_evaluator(request.app.state)


def running_evaluator(state: State) -> Evaluator:
    """The app's evaluator; 503 until the lifespan has built it."""
    evaluator = getattr(state, "evaluator", None)
    if evaluator is None:  # the lifespan has not run (or failed): nothing to serve yet
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is starting")
    return evaluator


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EvaluatorDep = Annotated[Evaluator, Depends(get_evaluator)]


async def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
) -> None:
    """When a token is configured, the request must carry `Authorization: Bearer <token>`."""
    check_token(settings, credentials.credentials if credentials is not None else None)


def bearer_credentials(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def check_token(settings: ServiceSettings, given: str | None) -> None:
    """Raise 401 unless no token is configured or `given` is it (compared in constant time)."""
    if settings.token is None:
        return
    expected = settings.token.get_secret_value().encode()
    if not secrets.compare_digest((given or "").encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
