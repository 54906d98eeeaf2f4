"""The runnable samples of the docs, run: a sample that stops working fails here, not in a user's hands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import LiveServer

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(page: str, after: str) -> list[str]:
    """The ```python blocks of `page` in the section whose heading starts with `after`."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {after}")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_tool_episode_sample_runs(live_server: LiveServer) -> None:
    sample = python_blocks("integrations.md", "Tool episodes")[0]
    assert 'url = "http://127.0.0.1:8000"' in sample
    exec(compile(sample.replace("http://127.0.0.1:8000", live_server.url), "integrations.md", "exec"), {})


def test_the_openreward_sample_runs(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openreward")
    sample = python_blocks("integrations.md", "OpenReward (ORS)")[0]
    assert 'url = "http://127.0.0.1:8000"' in sample
    monkeypatch.setenv("OPENREWARD_SESSION_URL", live_server.url)  # restored after the sample sets it
    monkeypatch.setenv("OPENREWARD_DISABLE_UPDATE_CHECK", "1")
    exec(compile(sample.replace("http://127.0.0.1:8000", live_server.url), "integrations.md", "exec"), {})
