"""Access control as ASGI middleware: optional API keys on every route but `/health`, and a WebSocket
Origin check.

API keys (`SCHED_API_KEYS=key1,key2`): when set, every HTTP request and WebSocket handshake must carry
`Authorization: Bearer <key>` (or `X-API-Key: <key>`, the header the `openreward` SDK sends); clients that
cannot set a header (OpenRLHF's `--remote_rm_url`, a browser WebSocket) may put `?api_key=<key>` in the URL
instead. Keys are compared in constant time, against every
configured key, so the time taken says nothing about how much of a key was right. A missing or wrong key
gets 401 (HTTP) or a refused handshake (WebSocket, HTTP 403). Unset, the service is open, as before.

Origin: a browser page on another site must not drive a WebSocket session with the user's network access
(cross-site WebSocket hijacking). A handshake that carries an `Origin` header is accepted only when that
origin is the service's own host or one listed in `SCHED_WS_ALLOWED_ORIGINS`; programs that send no
`Origin` (openenv-core's client, scripts) are not affected.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health"})
"""Paths served without a key: the liveness probe that compose and load balancers poll."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: the bearer token, else `X-API-Key`, else the `api_key` query parameter."""
    auth = _header(scope, b"authorization")
    if auth is not None:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = (_header(scope, b"x-api-key") or b"").decode("latin-1").strip()
    if api_key:
        return api_key
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "api_key" and value:
            return str(value)
    return None


def key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    """Constant-time comparison against every key (no early exit on the first match)."""
    if presented is None:
        return False
    given = presented.encode("utf-8", "surrogatepass")
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode("utf-8"))
    return ok


def origin_allowed(scope: Scope, allowed: frozenset[str]) -> bool:
    """True when the handshake has no `Origin`, or it is the service's own host or an allowed origin."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    text = origin.decode("latin-1").strip().rstrip("/").lower()
    if text in allowed or "*" in allowed:
        return True
    host = (_header(scope, b"host") or b"").decode("latin-1").strip().lower()
    return bool(host) and urlsplit(text).netloc == host


class AccessControl:
    """ASGI middleware applying the API keys (HTTP and WebSocket) and the WebSocket Origin check."""

    def __init__(self, app: ASGIApp, api_keys: tuple[str, ...], ws_origins: frozenset[str]) -> None:
        self.app, self.api_keys, self.ws_origins = app, api_keys, ws_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if not origin_allowed(scope, self.ws_origins) or (
                self.api_keys and not key_matches(presented_key(scope), self.api_keys)
            ):
                await send({"type": "websocket.close", "code": 1008, "reason": "forbidden"})
                return
        elif (
            kind == "http"
            and self.api_keys
            and scope.get("path") not in OPEN_PATHS
            and not key_matches(presented_key(scope), self.api_keys)
        ):
            await _unauthorized(send)
            return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send) -> None:
    body = b'{"detail":"missing or wrong API key: send the header Authorization: Bearer <key>"}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
