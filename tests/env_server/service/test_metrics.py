"""Operations: /metrics (Prometheus text format), X-Request-ID, the access log (text and JSON), and the
unversioned POST /score alias; metrics summed over uvicorn workers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from env_server.scoring.profiles import REWARD_VERSION
from env_server.service.app import create_app
from env_server.service.metrics import JsonFormatter, configure_logging
from env_server.service.settings import Settings
from tests.conftest import SMALL, start_server

GOLD_ID = "test-000000"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture()
def fresh() -> Iterator[TestClient]:
    """An app of its own: its metrics start at zero."""
    with TestClient(create_app(Settings(**SMALL, access_log=False))) as c:
        yield c


def _gold(client: TestClient) -> str:
    problem = client.get(f"/v1/problems/{GOLD_ID}").json()
    spec = {"events": problem["events"], "priorities": problem["priorities"]}
    return str(client.post("/v1/solve", json={"problem": spec}).json()["completion"])


def test_score_alias_is_v1_score(fresh: TestClient) -> None:
    body = {
        "items": [
            {"problem_id": GOLD_ID, "completion": _gold(fresh)},
            {"problem_id": GOLD_ID, "completion": "x"},
        ]
    }
    v1, alias = fresh.post("/v1/score", json=body), fresh.post("/score", json=body)
    assert v1.status_code == alias.status_code == 200 and v1.json() == alias.json()
    assert [r["reward"] for r in alias.json()["results"]] == [100.0, 0.0]
    assert fresh.post("/score", json={"items": []}).status_code == 422
    paths = fresh.get("/openapi.json").json()["paths"]
    assert "/score" in paths and "unversioned" in paths["/score"]["post"]["summary"].lower()


def test_metrics_count_requests_items_verdicts_errors_and_batches(fresh: TestClient) -> None:
    gold = _gold(fresh)
    items = [{"problem_id": GOLD_ID, "completion": c} for c in (gold, gold, "nothing")]
    items.append({"problem_id": "train-999999999", "completion": gold})
    assert fresh.post("/v1/score", json={"items": items}).status_code == 200
    assert fresh.post("/score", json={"profile": "original", "items": items[:1]}).status_code == 200
    fresh.get("/v1/problems/nope")
    fresh.get("/no/such/route")
    response = fresh.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, "sched_scored_items_total", profile="default", verdict="valid") == 2
    assert value(text, "sched_scored_items_total", profile="default", verdict="format_error") == 1
    assert value(text, "sched_scored_items_total", profile="default", verdict="error") == 1
    assert value(text, "sched_scored_items_total", profile="original", verdict="valid") == 1
    assert value(text, "sched_score_item_errors_total", profile="default") == 1
    assert value(text, "sched_score_batch_size_count", profile="default") == 1
    assert value(text, "sched_score_batch_size_sum", profile="default") == 4
    assert value(text, "sched_score_batch_size_bucket", profile="default", le="4.0") == 1
    assert value(text, "sched_score_batch_size_bucket", profile="default", le="2.0") == 0
    # Requests by route template (bounded labels), method and status; latency per route.
    assert value(text, "sched_http_requests_total", method="POST", route="/v1/score", status="200") == 1
    assert value(text, "sched_http_requests_total", method="POST", route="/score", status="200") == 1
    assert (
        value(
            text, "sched_http_requests_total", method="GET", route="/v1/problems/{problem_id}", status="404"
        )
        == 1
    )
    assert value(text, "sched_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(text, "sched_http_request_duration_seconds_count", method="POST", route="/v1/score") == 1
    assert value(text, "sched_build_info", reward_version=REWARD_VERSION) == 1


def test_oversized_requests_are_counted_too() -> None:
    with TestClient(create_app(Settings(**SMALL, access_log=False, max_body_bytes=1024))) as c:
        assert c.post("/v1/score", content=b"x" * 2048).status_code == 413
        assert (
            value(
                c.get("/metrics").text,
                "sched_http_requests_total",
                method="POST",
                route="unmatched",
                status="413",
            )
            == 1
        )


def test_request_id_is_returned_and_honoured(fresh: TestClient) -> None:
    made = fresh.get("/health").headers["x-request-id"]
    assert len(made) == 32 and made != fresh.get("/health").headers["x-request-id"]
    assert (
        fresh.get("/health", headers={"X-Request-ID": "trainer-7:step-12"}).headers["x-request-id"]
        == "trainer-7:step-12"
    )
    for unsafe in ("a b", "x" * 200, "<script>"):
        assert fresh.get("/health", headers={"X-Request-ID": unsafe}).headers["x-request-id"] != unsafe
    # Errors carry it as well: 404, 422, 413.
    assert fresh.get("/v1/problems/nope", headers={"X-Request-ID": "r1"}).headers["x-request-id"] == "r1"
    assert fresh.post("/v1/score", json={}, headers={"X-Request-ID": "r2"}).headers["x-request-id"] == "r2"


def test_access_log_lines_carry_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(Settings(**SMALL))) as c, caplog.at_level(logging.INFO, "env_server.access"):
        caplog.clear()
        c.get("/v1/problems/test-000001", headers={"X-Request-ID": "abc-123"})
    (record,) = [r for r in caplog.records if r.name == "env_server.access"]
    assert record.request_id == "abc-123" and record.status == 200  # type: ignore[attr-defined]
    assert record.route == "/v1/problems/{problem_id}" and record.getMessage().startswith(
        "GET /v1/problems/test-000001 200"
    )  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc-123" and line["status"] == 200 and line["logger"] == "env_server.access"
    assert line["path"] == "/v1/problems/test-000001" and line["duration_ms"] >= 0 and line["level"] == "info"


def test_log_format_setting_picks_the_formatter() -> None:
    logger = logging.getLogger("env_server")
    try:
        configure_logging(Settings(**SMALL, log_format="json"))
        configure_logging(Settings(**SMALL, log_format="json"))  # idempotent: one handler
        handlers = [h for h in logger.handlers if h.get_name() == "sched-env"]
        assert len(handlers) == 1 and isinstance(handlers[0].formatter, JsonFormatter)
    finally:
        configure_logging(Settings(**SMALL))
    assert not isinstance(handlers[0].formatter, JsonFormatter)
    with pytest.raises(ValueError):
        Settings(log_format="yaml")  # type: ignore[arg-type]


def test_json_logs_from_the_real_server() -> None:
    server = start_server(SCHED_LOG_LEVEL="info", SCHED_LOG_FORMAT="json")
    try:
        httpx.get(f"{server.url}/health", headers={"X-Request-ID": "from-test"}, timeout=5)
    finally:
        server.stop()
    assert server.process.stderr is not None
    lines = [json.loads(x) for x in server.process.stderr.read().decode().splitlines() if x.startswith("{")]
    assert any(x.get("request_id") == "from-test" and x.get("path") == "/health" for x in lines), lines


def test_metrics_add_up_across_workers(tmp_path: Path) -> None:
    """Two uvicorn workers: whichever answers the scrape reports every worker's requests. Each request
    opens its own connection, so the kernel spreads them over both workers; the per-process files of
    prometheus_client's multiprocess mode show that both counted some."""
    server = start_server(workers=2, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    try:
        n = 40
        for _ in range(n):
            r = httpx.post(
                f"{server.url}/v1/score", json={"items": [{"problem_id": GOLD_ID, "completion": "x"}] * 3}
            )
            assert r.status_code == 200
        scrapes = [httpx.get(f"{server.url}/metrics", timeout=10).text for _ in range(6)]
    finally:
        server.stop()
    pids = {p.stem.rsplit("_", 1)[1] for p in tmp_path.glob("counter_*.db")}
    assert len(pids) == 2, f"requests reached {len(pids)} worker(s)"
    for text in scrapes:  # every scrape, from either worker, has the totals
        assert value(text, "sched_http_requests_total", method="POST", route="/v1/score", status="200") == n
        assert value(text, "sched_scored_items_total", profile="default", verdict="format_error") == 3 * n
        assert value(text, "sched_score_batch_size_count", profile="default") == n
