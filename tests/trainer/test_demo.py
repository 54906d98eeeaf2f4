"""`make demo` pieces: the per-component table and the reference line (the run itself is the e2e test's)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from rich.console import Console

from trainer.demo import component_table, reference_line
from trainer.env_client import EnvClient


def test_reference_line_scores_the_optimal_answer_through_the_service(client: TestClient) -> None:
    line = reference_line(EnvClient(client))
    assert "train-000000 earns 100 (format 10, order 20, score 70)" in line


def test_component_table_shows_points_at_first_and_last_step() -> None:
    history = [
        {
            "step": 1,
            "reward": 12.0,
            "rewards/format/mean": 0.5,
            "rewards/order/mean": 0.35,
            "rewards/score/mean": 0.0,
        },
        {"step": 1, "loss": 0.1},
        {
            "step": 4,
            "reward": 44.0,
            "rewards/format/mean": 1.0,
            "rewards/order/mean": 0.5,
            "rewards/score/mean": 0.4,
        },
    ]
    console = Console(record=True, width=100)
    console.print(component_table(history, {"format": 10.0, "order": 20.0, "score": 70.0}))
    text = console.export_text()
    assert "step 1" in text and "step 4" in text
    assert "5.00" in text and "10.00" in text and "28.00" in text and "44.00" in text
