"""The OpenAPI contract says what the service does: every status, the request rules a client needs to build
a valid request, typed responses; and schemathesis, with every check, finds nothing against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from env_server.service.app import create_app
from env_server.service.settings import Settings
from shared_schema import Event
from shared_schema.models import NAME_PATTERN, TIME_PATTERN
from tests.conftest import start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module")
def schema(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def test_every_status_is_documented(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for path in ("/v1/score", "/v1/solve", "/v1/prompt", "/get_reward", "/openenv/step", "/openenv/reset"):
        assert {"200", "400", "413", "422"} <= set(paths[path]["post"]["responses"]), path
    assert {"200", "404", "422"} <= set(paths["/v1/problems/{problem_id}"]["get"]["responses"])
    assert "404" in paths["/openenv/step"]["post"]["responses"]
    assert set(paths["/health"]["get"]["responses"]) == {"200"}
    components = schema["components"]["schemas"]
    error_item = components["ValidationErrorItem"]
    assert set(error_item["required"]) == {"loc", "msg", "type"}
    assert components["ErrorResponse"]["properties"]["detail"]["type"] == "string"


def test_request_rules_are_in_the_schema(schema: dict[str, Any], settings: Settings) -> None:
    components = schema["components"]["schemas"]
    event = components["Event"]["properties"]
    assert event["start"]["pattern"] == event["end"]["pattern"] == TIME_PATTERN
    assert event["name"]["pattern"] == NAME_PATTERN and event["name"]["maxLength"] == 200
    item = components["ScoreItem"]
    assert [b["required"] for b in item["oneOf"]] == [["problem_id"], ["problem"]]
    request = components["ScoreRequest"]["properties"]
    assert request["items"]["maxItems"] == settings.max_batch_items and request["items"]["minItems"] == 1
    assert request["profile"]["enum"] == ["default", "graded", "original"]
    rlhf = components["OpenRLHFRewardRequest"]["properties"]
    assert rlhf["query"]["maxItems"] == rlhf["labels"]["maxItems"] == settings.max_batch_items
    params = {p["name"]: p for p in schema["paths"]["/v1/problems"]["get"]["parameters"]}
    assert "hard" in params["difficulty"]["schema"]["anyOf"][0]["enum"]
    assert params["limit"]["schema"]["maximum"] == settings.max_page_size
    reset = components["OpenEnvResetRequest"]["properties"]
    assert reset["split"]["enum"] == ["train", "test"]
    assert {"type": "integer", "minimum": 0} in reset["index"]["anyOf"]
    assert "problem_id" in components["SchedulingStepAction"]["required"]


def test_openenv_metadata_and_health_are_typed(schema: dict[str, Any], client: TestClient) -> None:
    for path, model in (("/openenv/metadata", "OpenEnvMetadata"), ("/openenv/health", "OpenEnvHealth")):
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}
    assert set(client.get("/openenv/metadata").json()) == {"name", "description", "version"}


def test_with_keys_the_schema_documents_401_and_the_bearer_scheme() -> None:
    c = TestClient(create_app(Settings(train_size=4, test_size=2, api_keys="k")))
    keyed = c.get("/openapi.json", headers={"authorization": "Bearer k"}).json()
    assert keyed["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert "401" in keyed["paths"]["/v1/score"]["post"]["responses"]
    assert "401" not in keyed["paths"]["/health"]["get"]["responses"]


@given(st.text(max_size=12))
def test_the_name_pattern_is_the_name_rule(name: str) -> None:
    """The schema's pattern and the validator accept exactly the same names (hypothesis' text has no
    lone surrogates, which the validator also refuses)."""
    try:
        Event(name=name, start="09:00", end="10:00")
        valid = True
    except ValueError:
        valid = False
    assert valid == bool(re.fullmatch(NAME_PATTERN[1:-1], name) and len(name) <= 200)


SESSION = "cur-5c4e000000000001"
ORS_SESSION = "ep-5c4e000000000001"


def run_schemathesis(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(ST), "--config-file", str(CONFIG), "--no-color", "run", f"{url}/openapi.json",
        "--checks", "all", "--generation-deterministic", "--workers", "1", "--request-timeout", "30", *extra,
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_schemathesis_finds_nothing() -> None:
    """Every phase (examples, coverage, fuzzing, stateful), every check, positive and negative data,
    deterministic: no 5xx, no response off the schema, no undocumented status."""
    server = start_server(SCHED_MAX_BODY_BYTES="1048576")
    try:
        state = {"session_id": SESSION, "config": {}, "rung": 0}  # the session schemathesis.toml names
        assert httpx.put(f"{server.url}/v1/curriculum/{SESSION}", json=state).status_code == 200
        ors = {"X-Session-ID": ORS_SESSION}  # the ORS session schemathesis.toml names
        assert httpx.post(f"{server.url}/create", json={"split": "train"}, headers=ors).status_code == 400
        assert httpx.post(f"{server.url}/create", json={"split": "train", "index": 0}, headers=ors).is_success
        out = run_schemathesis(server.url, "--max-examples", "40")
    finally:
        server.stop()
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "43 selected / 43 total" in out.stdout and "No issues found" in out.stdout, out.stdout[-3000:]


def test_schemathesis_with_api_keys_finds_nothing() -> None:
    """With keys set, the same with the key (and `ignored_auth` checks that no route answers without it)."""
    server = start_server(SCHED_API_KEYS="st-key", SCHED_MAX_BODY_BYTES="1048576")
    try:
        out = run_schemathesis(
            server.url, "--max-examples", "8", "--phases", "examples,coverage,fuzzing",
            "-H", "Authorization: Bearer st-key",
        )  # fmt: skip
    finally:
        server.stop()
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
