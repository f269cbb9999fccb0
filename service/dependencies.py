"""FastAPI dependencies: the objects built at start-up, reached through `app.state`.

All are `async def` although none awaits: FastAPI runs plain `def` dependencies on its thread
pool, and that hop per dependency cost more than the rest of a small request. The log-evidence
route, the hot path, goes through no FastAPI machinery at all (`service.routes.log_evidence`):
it reads the app's state and calls `check_token` itself, on the same headers.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.datastructures import State

from service.evaluation import Evaluator
from service.metrics import Metrics
from service.registry import LensRegistry
from service.settings import ServiceSettings


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_evaluator(request: Request) -> Evaluator:
    return running_evaluator(request.app.state)


async def get_registry(request: Request) -> LensRegistry:
    running_evaluator(request.app.state)  # 503 while starting: both are made together
    return request.app.state.registry


def running_evaluator(state: State) -> Evaluator:
    """The app's evaluator; 503 until the lifespan has built it."""
    evaluator = getattr(state, "evaluator", None)
    if evaluator is None:  # the lifespan has not run (or failed): nothing to serve yet
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is starting")
    return evaluator


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EvaluatorDep = Annotated[Evaluator, Depends(get_evaluator)]
RegistryDep = Annotated[LensRegistry, Depends(get_registry)]


class BearerToken(SecurityBase):
    """The dependency guarding every route but `/healthz`: see `check_token`.

    A `SecurityBase`, so OpenAPI documents the bearer scheme on every route that depends on it.
    FastAPI's own `HTTPBearer` reads only the first `Authorization` header, where the fast path
    must see them all to apply the same rule.
    """

    def __init__(self) -> None:
        self.model = HTTPBearerModel(description="the service token (LENSSERVE_TOKEN)")
        self.scheme_name = "HTTPBearer"

    async def __call__(self, request: Request) -> None:
        check_token(request.app.state.settings, request.headers.getlist("authorization"))


require_token = BearerToken()


def check_token(settings: ServiceSettings, authorization: Sequence[str]) -> None:
    """Raise 401 unless no token is configured or `authorization`, every `Authorization` header
    of the request, is one `Bearer <token>` with the token (compared in constant time).

    Two headers are refused even if one holds the token: proxies and frameworks disagree on which
    of them counts, and a rule that depends on the reader is no rule.
    """
    if settings.token is None:
        return
    if len(authorization) > 1:
        raise _unauthorized(f"{len(authorization)} Authorization headers; send exactly one")
    given = _bearer_token(authorization[0]) if authorization else None
    expected = settings.token.get_secret_value().encode()
    if not secrets.compare_digest((given or "").encode(), expected):
        raise _unauthorized("missing or wrong bearer token")


def _bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )
