"""Service configuration: one `Settings` object, read from `SCHED_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the environment service. `SCHED_TRAIN_SIZE=100 sched-env serve`, and so on."""

    model_config = SettingsConfigDict(env_prefix="SCHED_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Bind address (use 0.0.0.0 in a container).")
    port: int = Field(default=8000, ge=0, le=65535, description="Port.")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    balance_connections: bool = Field(
        default=True,
        description="With several workers, a worker accepts a connection only while no other holds fewer "
        "open connections (least connections), instead of whichever wakes first taking every pending one.",
    )
    log_level: str = Field(default="info", description="uvicorn log level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Service log lines (access log included): text, or one JSON object each."
    )
    access_log: bool = Field(default=True, description="One log line per request, with its request id.")

    seed: int = Field(default=0, description="Generator seed; replicas must share it.")
    train_size: int = Field(default=5000, ge=0, le=1_000_000, description="Generated train problems.")
    test_size: int = Field(default=500, ge=0, le=1_000_000, description="Generated test problems.")
    difficulty: str = Field(default="default", description="Preset of the generated splits.")
    train_file: Path | None = Field(default=None, description="Serve this JSONL/Parquet as the train split.")
    test_file: Path | None = Field(default=None, description="Serve this JSONL/Parquet as the test split.")

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest request body (413).")
    max_batch_items: int = Field(default=4096, ge=1, description="Most items in one /v1/score call (413).")
    max_completion_chars: int = Field(
        default=65_536, ge=64, description="Longer completions are scored on their first this many chars."
    )
    max_page_size: int = Field(default=1000, ge=1, description="Largest `limit` of /v1/problems.")
    preset_cache_size: int = Field(
        default=50_000, ge=0, description="Problems of other presets kept in memory."
    )
    request_time_budget_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest a scoring or page request may compute; past it the service answers 503.",
    )
    problem_cache_size: int = Field(
        default=8192, ge=0, description="Distinct inline problems whose scoring index is kept in memory."
    )
    gc_young_threshold: int = Field(
        default=50_000,
        ge=1,
        description="Allocations between two young-generation garbage collections in a served worker "
        "(Python's default: 700). Scoring a batch allocates many short-lived objects; fewer collections "
        "make a batch of 64 inline problems 10-20 % faster.",
    )
    offload_body_bytes: int = Field(
        default=256 * 1024,
        ge=0,
        description="Request bodies larger than this are parsed, validated and handled on a worker thread "
        "(`/v1/score` and every other route that takes a body), so the event loop keeps answering other "
        "requests, `/health` included.",
    )

    api_keys: str = Field(
        default="",
        repr=False,
        description="Comma-separated API keys; when set, every route but /health needs "
        "`Authorization: Bearer <key>` (401 otherwise). Empty: no authentication.",
    )
    ws_allowed_origins: str = Field(
        default="",
        description="Comma-separated origins (`https://host:port`) allowed to open /openenv/ws from a "
        "browser, besides the service's own; `*` allows any. No Origin header: always allowed.",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a request's headers (then closed)."
    )
    keep_alive_timeout: int = Field(
        default=75,
        ge=1,
        description="Seconds an idle keep-alive connection stays: longer than clients keep idle connections "
        "(httpx 5 s, aiohttp 15 s), so a client never sends on a connection the service is closing.",
    )
    keep_alive_requests: int = Field(
        default=0,
        ge=0,
        description="Requests one connection may carry; the last answer says `Connection: close` and the "
        "client reconnects (like nginx's keepalive_requests), so long-lived clients spread over replicas "
        "added since they connected. 0 (default): no limit.",
    )
    curriculum_dir: Path | None = Field(
        default=None,
        description="Directory curriculum sessions are kept in, so they survive a restart (replicas on one "
        "host may share it). None or empty: in memory (a trainer puts a lost session back with PUT).",
    )
    curriculum_max_sessions: int = Field(
        default=1000, ge=1, le=1_000_000, description="Most curriculum sessions held at once (429 past it)."
    )

    episode_db: Path | None = Field(
        default=None,
        description="SQLite file the tool episodes (`/v1/episodes`) are kept in; the workers of one service "
        "share it. None or empty: `sched-env serve` with several workers makes one in the temporary "
        "directory for them (removed when it stops); one worker keeps them in memory.",
    )
    episode_max_sessions: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Most tool episodes open at once (429 past it)."
    )
    episode_ttl_s: float = Field(
        default=600.0, gt=0, le=86_400, description="An episode not used for this long is dropped (404)."
    )
    episode_checks: int = Field(
        default=3, ge=0, le=1000, description="Check budget of an episode that does not ask for one."
    )
    episode_max_checks: int = Field(
        default=20, ge=0, le=1000, description="Largest check budget an episode may ask for (422 past it)."
    )

    @field_validator("curriculum_dir", "episode_db", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """`SCHED_CURRICULUM_DIR=` (compose's and the configmap's default) means none, not the cwd."""
        return None if value == "" else value

    def api_key_set(self) -> tuple[str, ...]:
        """The configured API keys (empty: authentication off)."""
        return tuple(k.strip() for k in self.api_keys.split(",") if k.strip())

    def ws_origin_set(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/").lower() for o in self.ws_allowed_origins.split(",") if o.strip()
        )
