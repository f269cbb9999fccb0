"""The OpenAPI documentation (`/openapi.json`, `/docs`, `/redoc`) behind the service token.

FastAPI serves its documentation on routes no dependency guards, so `create_app` turns those off
(`FastAPI(**BUILTIN_DOCS_OFF)`) and includes `router`, which serves the same pages at the same
paths with `require_token` (no check when no token is configured). FastAPI's pages load Swagger
UI, ReDoc, Google's fonts and a favicon from the internet, and are blank without it; these load
the scripts, styles and favicon that the `fastapi-offline` package ships, from `/docs/assets/`
(behind the token too), and nothing from another host: no fonts, and no Swagger validator badge.

With a token, a browser must send it for the page and for the schema the page fetches (e.g. a
header-setting extension); `curl -H "Authorization: Bearer $LENSSERVE_TOKEN"` reads the schema.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from service.dependencies import require_token
from service.schemas import ErrorResponse

BUILTIN_DOCS_OFF: dict[str, None] = {"openapi_url": None, "docs_url": None, "redoc_url": None}
OPENAPI_PATH = "/openapi.json"
SWAGGER_UI_PATH = "/docs"
SWAGGER_UI_OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
# The files of fastapi-offline's `static/` directory the pages load.
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}

_UNAUTHORIZED = {
    "description": "missing, wrong or repeated bearer token",
    "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}},
}

# uvicorn's HTTP parser answers this, in plain text, before any route runs (Schemathesis sent a
# generated `content-length: 9[O` header to `GET /v1/models`): every operation can get it.
_MALFORMED_REQUEST = {
    "description": "malformed HTTP request (e.g. an unparsable Content-Length), refused by the "
    "HTTP server before the application reads it",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])


@router.get(OPENAPI_PATH)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(documented_malformed_request(documented_unauthorized(request.app.openapi())))


@router.get(SWAGGER_UI_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root_path(request)
    return get_swagger_ui_html(
        openapi_url=root + OPENAPI_PATH,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=root + SWAGGER_UI_OAUTH2_REDIRECT_PATH,
        init_oauth=app.swagger_ui_init_oauth,
        # Swagger UI otherwise sends the schema to validator.swagger.io for a badge.
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
    )


@router.get(SWAGGER_UI_OAUTH2_REDIRECT_PATH)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    root = _root_path(request)
    return get_redoc_html(openapi_url=root + OPENAPI_PATH, title=f"{request.app.title} - ReDoc",
                          redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                          redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                          with_google_fonts=False)


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no documentation asset {name!r}")
    # pip installs the package as files, so its resources are paths.
    path = Path(str(resources.files("fastapi_offline"))) / "static" / name
    return FileResponse(path, media_type=ASSETS[name])


def documented_unauthorized(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with a 401 answer on every operation that requires the bearer token.

    FastAPI lists the security scheme of each operation whose dependencies include
    `require_token` but cannot add the answer it gives; this adds it from that list, so the two
    cannot disagree. Idempotent: it edits FastAPI's cached schema in place.
    """
    for operations in schema["paths"].values():
        for operation in operations.values():
            if operation.get("security"):
                operation["responses"].setdefault("401", _UNAUTHORIZED)
    return schema


def documented_malformed_request(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the HTTP server's 400 answer to a malformed request on every operation.

    Idempotent: it edits FastAPI's cached schema in place.
    """
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation["responses"].setdefault("400", _MALFORMED_REQUEST)
    return schema


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under, as FastAPI's own documentation routes use it."""
    return request.scope.get("root_path", "").rstrip("/")
