"""A real uvicorn process (the command the container runs): scoring over TCP, bad input, several workers."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer, start_server


def test_real_server_scores_and_survives_garbage(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        problem = http.get("/v1/problems/test-000001").json()
        spec = {k: problem[k] for k in ("events", "priorities")}
        gold = http.post("/v1/solve", json={"problem": spec}).json()["completion"]
        for garbage in (b"\xff\xfe", b"[]", b'{"items": "no"}', b"{" * 10_000):
            r = http.post("/v1/score", content=garbage, headers={"content-type": "application/json"})
            assert r.status_code == 422, r.text
        adversarial = "<event><name>" * 4000
        out = http.post(
            "/v1/score",
            json={"items": [{"problem_id": problem["id"], "completion": c} for c in (gold, adversarial)]},
        ).json()
        assert [r["reward"] for r in out["results"]] == [100.0, 0.0]
        assert http.get("/health").json()["status"] == "ok"
    assert live_server.process.poll() is None


def test_two_workers_serve_identical_problems() -> None:
    server = start_server(workers=2)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            seen = {http.get("/v1/problems/train-000007").text for _ in range(12)}
        assert len(seen) == 1
    finally:
        server.stop()
