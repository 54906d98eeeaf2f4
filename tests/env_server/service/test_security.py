"""Access control and hygiene: API keys on every route but /health, the WebSocket Origin check and frame
limit, /docs without a CDN, no server paths in /v1/info."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from env_server.service.app import create_app
from env_server.service.security import key_matches
from env_server.service.settings import Settings

KEYS = "key-one,key-two"


@pytest.fixture(scope="module")
def keyed_app() -> FastAPI:
    return create_app(Settings(train_size=8, test_size=4, api_keys=KEYS))


@pytest.fixture(scope="module")
def keyed(keyed_app: FastAPI) -> TestClient:
    return TestClient(keyed_app)


def every_http_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every documented operation, plus the docs page, schema and assets."""
    out = [("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/docs/assets/swagger-ui.css")]
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "train-000000", path)
        out += [(method.upper(), concrete) for method in operations]
    return out


def test_every_route_but_health_needs_a_key(keyed_app: FastAPI, keyed: TestClient) -> None:
    routes = every_http_route(keyed_app)
    assert {"/docs", "/openapi.json", "/v1/score", "/get_reward", "/openenv/step", "/openenv/tools/mcp"} <= {
        p for _, p in routes
    }
    assert len(routes) >= 16
    for method, path in routes:
        r = keyed.request(method, path)
        if path == "/health":
            assert r.status_code == 200
            continue
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer" and "Authorization: Bearer" in r.json()["detail"]
        wrong = keyed.request(method, path, headers={"authorization": "Bearer key-three"})
        assert wrong.status_code == 401
        for headers in ({"authorization": "Bearer key-one"}, {"authorization": "bearer  key-two "}):
            assert keyed.request(method, path, headers=headers).status_code != 401, (method, path)


def test_a_key_in_the_query_serves_clients_that_cannot_set_headers(keyed: TestClient) -> None:
    body = {"query": ["x"], "prompts": [""], "labels": ["train-000000"]}
    assert keyed.post("/get_reward?api_key=key-two", json=body).status_code == 200  # OpenRLHF's remote_rm_url
    assert keyed.post("/get_reward?api_key=nope", json=body).status_code == 401


def test_an_x_api_key_header_serves_the_openreward_sdk(keyed: TestClient) -> None:
    assert keyed.get("/tools", headers={"x-api-key": "key-one"}).status_code == 200  # what the SDK sends
    assert keyed.get("/tools", headers={"x-api-key": "nope"}).status_code == 401
    assert keyed.get("/tools", headers={"x-api-key": ""}).status_code == 401  # the SDK's default: no key


def test_key_comparison_is_constant_time_over_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert key_matches("k1", ("k1", "k2", "k3")) and not key_matches("k", ("k1", "k2"))
    assert [b for _, b in compared] == [b"k1", b"k2", b"k3", b"k1", b"k2"]  # no early exit on a match
    assert not key_matches(None, ("k1",)) and not key_matches("\udc80", ("k1",))


def test_without_keys_the_service_is_open(client: TestClient) -> None:
    assert client.get("/v1/info").status_code == 200


@pytest.mark.parametrize("route", ["/openenv/ws", "/openenv/tools/ws"])
def test_websocket_needs_the_key_and_a_same_site_origin(keyed: TestClient, route: str) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, keyed.websocket_connect(route):
        pass
    assert refused.value.code == 1008
    auth = {"authorization": "Bearer key-one"}
    with keyed.websocket_connect(route, headers=auth) as ws:
        ws.send_json({"type": "state"})
        assert ws.receive_json()["type"] == "state"
    with keyed.websocket_connect(route, headers={**auth, "origin": "http://testserver"}) as ws:
        ws.send_json({"type": "state"})
        assert ws.receive_json()["type"] == "state"
    evil = {**auth, "origin": "https://evil.example"}
    with pytest.raises(WebSocketDisconnect), keyed.websocket_connect(route, headers=evil):
        pass


def test_listed_origins_may_open_a_websocket() -> None:
    c = TestClient(create_app(Settings(train_size=4, test_size=2, ws_allowed_origins="https://ui.example/")))
    with c.websocket_connect("/openenv/ws", headers={"origin": "https://UI.example"}) as ws:
        ws.send_json({"type": "state"})
        assert ws.receive_json()["type"] == "state"
    with (
        pytest.raises(WebSocketDisconnect),
        c.websocket_connect("/openenv/ws", headers={"origin": "https://x.example"}),
    ):
        pass


def test_websocket_frames_over_the_body_limit_end_the_session() -> None:
    c = TestClient(create_app(Settings(train_size=4, test_size=2, max_body_bytes=4096)))
    with c.websocket_connect("/openenv/ws") as ws:
        ws.send_text('{"type": "state"}')
        assert ws.receive_json()["type"] == "state"
        ws.send_text("x" * 5000)
        assert ws.receive_json()["data"]["code"] == "TooLarge"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1009


def test_docs_load_nothing_from_a_cdn(client: TestClient) -> None:
    html = client.get("/docs").text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(r"""url: ?['"]([^'"]+)""", html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "cdn" not in html and "https://" not in html.replace("https://swagger.io", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = client.get(f"/docs/assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert client.get("/redoc").status_code == 404  # ReDoc would load its script from a CDN


def test_info_names_no_server_path(client: TestClient) -> None:
    sources = client.get("/v1/info").json()["generator"]["sources"]
    assert all(not s.startswith("/") and "/" not in s.split(":", 1)[-1] for s in sources.values())
