"""Error responses and the OpenAPI contract that documents them.

Every error body has a `detail`. A 422 (validation) always carries a *list* of `{loc, msg, type}`, whether
pydantic or a route raised it, as the schema says; other errors (400, 401, 404, 413) carry a string. No error
echoes client input without a bound: locations and messages are cut to a short prefix plus the length, so an
8 MB field never comes back as a 40 MB error.

`complete_openapi` adds what FastAPI cannot infer: the 400/401/404/413 responses, the batch cap (a
setting, so it is written into the schema of the running service) and the names of the reward profiles and
difficulty presets, so that generated clients and fuzzers can build valid requests.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from env_server.service.settings import Settings
from shared_schema.errors import ErrorResponse, ValidationErrorResponse
from shared_schema.text import CLIP_CHARS, clip_message

log = logging.getLogger("env_server")

MAX_ERRORS = 20
"""Most validation errors listed in one 422 (a batch of 4,000 bad items needs no 4,000 lines)."""
LARGE_BODY = 1 << 20
"""A failed request at least this large triggers a garbage collection (see `collect_after_large_failure`)."""


class Unprocessable(HTTPException):
    """A 422 raised by a route, shaped like a validation error: `loc` names the field."""

    def __init__(self, msg: str, loc: Sequence[str | int] = ("body",)) -> None:
        super().__init__(422, msg)
        self.loc = list(loc)


def _loc_part(part: Any) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= CLIP_CHARS else clip_message(text, CLIP_CHARS)


def error_list(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be megabytes long, or `Infinity` that JSON
    cannot encode): bounded locations and messages, at most `MAX_ERRORS` of them."""
    out: list[dict[str, Any]] = [
        {
            "loc": [_loc_part(p) for p in e.get("loc", ())],
            "msg": clip_message(str(e.get("msg", ""))),
            "type": str(e.get("type", "")),
        }
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "msg": f"… and {len(errors) - MAX_ERRORS} more errors", "type": "truncated"})
    return out


def _body_size(request: Request) -> int:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() and len(value) < 19 else 0


def collect_after_large_failure(request: Request) -> None:
    """Free a rejected large body now. A failed request leaves its parsed body in reference cycles (the
    exception, its traceback and frames), which only a full collection frees; dozens of 8 MB bodies
    rejected in a row would otherwise hold gigabytes until then."""
    if _body_size(request) >= LARGE_BODY:
        gc.collect()


def validation_error_response(exc: ValidationError | RequestValidationError) -> JSONResponse:
    """The 422 of a validation error: a bounded list of `{loc, msg, type}`."""
    return JSONResponse(status_code=422, content={"detail": error_list(exc.errors())})


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The response of an `HTTPException`: a bounded string, or a one-error list for a 422."""
    headers = getattr(exc, "headers", None)
    text = clip_message(str(exc.detail))
    if exc.status_code == 422:
        loc = exc.loc if isinstance(exc, Unprocessable) else ["body"]
        content: dict[str, Any] = {"detail": [{"loc": loc, "msg": text, "type": "value_error"}]}
    else:
        content = {"detail": text}
    return JSONResponse(status_code=exc.status_code, content=content, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """422s as bounded lists, other HTTP errors as bounded strings."""

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: ValidationError | RequestValidationError) -> JSONResponse:
        response = validation_error_response(exc)
        del exc
        collect_after_large_failure(request)
        return response

    @app.exception_handler(HTTPException)
    @app.exception_handler(StarletteHTTPException)  # the router's own 404 and 405
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = http_error_response(exc)
        if exc.status_code == 405:  # Starlette names the first route's methods only; a path may have several
            response.headers["allow"] = ", ".join(allowed_methods(request))
        collect_after_large_failure(request)
        return response


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (the `Allow` of a 405): the
    routes whose path matches, whatever their method (Starlette's partial match)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


BATCH_FIELDS = {"ScoreRequest": ("items",), "OpenRLHFRewardRequest": ("query", "prompts", "labels")}
NOT_FOUND_PATHS = frozenset({"/openenv/reset", "/openenv/step", "/v1/episodes"})
"""Routes without a path parameter that still answer 404: a problem id (or index) that names no problem."""


def _enum(schema: dict[str, Any], names: list[str]) -> None:
    """Restrict a string schema (or the string branch of an `anyOf`) to `names`."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch["enum"] = names


def complete_openapi(app: FastAPI, settings: Settings, named: dict[str, list[str]]) -> None:
    """Document every status a route can answer, and the batch cap, in `app.openapi()`.

    `named` maps a query parameter (and `ScoreRequest.profile`) to the names its value must be one of
    (checked in code, listed in the schema): the app passes the reward profiles and difficulty presets."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorResponse"] = ErrorResponse.model_json_schema()
        components["HTTPValidationError"] = ValidationErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["HTTPValidationError"].pop("$defs", {}))
        for name, fields in BATCH_FIELDS.items():
            for field in fields:
                prop = components.get(name, {}).get("properties", {}).get(field)
                if prop is not None:
                    prop["maxItems"] = settings.max_batch_items
        _enum(components["ScoreRequest"]["properties"]["profile"], named["profile"])
        if settings.api_key_set():
            components_root = schema["components"]
            components_root["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for param in operation.get("parameters", []):
                    if param.get("name") in named and param.get("in") == "query":
                        _enum(param["schema"], named[param["name"]])
                if "requestBody" in operation:
                    responses["400"] = {
                        "description": "The body is not readable JSON",
                        **_ref("ErrorResponse"),
                    }
                    responses["413"] = {
                        "description": "Body or batch over the limit",
                        **_ref("ErrorResponse"),
                    }
                if "{" in path or path in NOT_FOUND_PATHS:
                    responses["404"] = {"description": "Not found", **_ref("ErrorResponse")}
                if "requestBody" in operation or operation.get("parameters"):
                    responses["422"] = {"description": "Validation error", **_ref("HTTPValidationError")}
                if settings.api_key_set() and path != "/health":
                    responses["401"] = {"description": "Missing or wrong API key", **_ref("ErrorResponse")}
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
