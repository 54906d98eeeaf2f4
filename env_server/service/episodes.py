"""`/v1/episodes`: the check-and-submit tool episode (docs/contract.md section 8).

An episode is one served problem. `POST /v1/episodes` starts it and answers the prompt (the problem in the
asked style, then how to use the tools); `POST /v1/episodes/{id}/check` says what a draft breaks (typed
violations: overlapping pairs, unknown or altered events, repeats, order) and what it is worth, never the
optimum, spending one check of the episode's budget; `POST /v1/episodes/{id}/submit` scores the answer with
the same exact profile as `/v1/score` and ends the episode. Every protocol adapter (TRL's environment
factory, OpenEnv's MCP tools, an OpenReward front end) is meant to be a thin layer over these three calls.

Where the state lives: one row per episode in SQLite. `sched-env serve` with several workers gives
them one file (in the temporary directory, removed when it stops; or `SCHED_EPISODE_DB`), so a call may
land on any worker; one worker alone (or `create_app` in a notebook) keeps them in memory. Budget
updates and the end of an episode are single statements (`UPDATE … WHERE checks_used < checks`,
`DELETE … RETURNING`), so two calls
racing on one episode can neither overspend it nor submit it twice. Replicas on separate hosts do not share
episodes: route an episode's calls to one replica (its id is in the path), or point the replicas of one
host at one file. What an episode survives: a worker's restart (the file stays); not a restart of the
service with the default temporary file, nor its TTL (`episode_ttl_s` since its last call), nor its end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from starlette.concurrency import run_in_threadpool

from env_server.scoring.batch import score_items_wire
from env_server.scoring.index import ProblemIndex
from env_server.scoring.profiles import PROFILES, get_profile
from env_server.service.errors import Unprocessable
from env_server.service.integrations.openenv import EnvError, SchedulingEnv
from env_server.service.settings import Settings
from env_server.service.store import Entry, ProblemStore
from env_server.task.prompts import build_prompt
from shared_schema import ChatMessage, ScoreItem, ScoreResult
from shared_schema.episodes import (
    AnswerRequest,
    CheckResult,
    EpisodeStart,
    EpisodeStarted,
    EpisodeState,
    SubmitResult,
)
from shared_schema.errors import ErrorResponse
from shared_schema.integrations import OpenEnvResetRequest
from shared_schema.text import clip

PREFIX = "/v1/episodes"
_EPISODE_ID = re.compile(r"ep-[0-9a-f]{16}")

TOOL_INSTRUCTIONS = (
    "Tools: before you answer, you may check a draft with `check_schedule(answer)`: it tells you which "
    "rules the draft breaks (overlapping events, events not in the list or changed, repeats, order) and "
    "its total value, but not the best possible value. You have {checks} check{s}. When you are done, "
    "give your final answer with `submit(answer)`; it is scored once and ends the task. The final answer is "
    "written as described above, the reasoning block and then the <schedule> block; a draft to check may "
    "be the <schedule> block alone."
)


@dataclass(frozen=True, slots=True)
class Row:
    """One episode as stored."""

    episode_id: str
    problem_id: str
    profile: str
    checks: int
    checks_used: int
    check_cost: float
    expires: float  # time.time() after which it is dropped

    def state(self, now: float) -> EpisodeState:
        return EpisodeState(**self.fields(now))

    def fields(self, now: float) -> dict[str, object]:
        return {
            "episode_id": self.episode_id,
            "problem_id": self.problem_id,
            "profile": self.profile,
            "checks": self.checks,
            "checks_used": self.checks_used,
            "remaining_checks": self.checks - self.checks_used,
            "check_cost": self.check_cost,
            "expires_in_s": round(max(0.0, self.expires - now), 3),
        }


@dataclass(frozen=True, slots=True)
class Call:
    """A check or submit that names itself (`AnswerRequest.call_id`): its retries are answered, not redone."""

    call_id: str
    answer_key: str  # a digest of the answer: a retry sends the same one

    @classmethod
    def of(cls, req: AnswerRequest) -> Call | None:
        if req.call_id is None:
            return None
        return cls(req.call_id, hashlib.sha256(req.answer.encode("utf-8", "surrogatepass")).hexdigest()[:32])


class EpisodeLimitError(RuntimeError):
    """As many episodes are open as the service allows: a 429."""


class EpisodeExists(RuntimeError):
    """An episode under the asked id is open already: a 409."""


class NoChecksLeft(RuntimeError):
    """The episode's check budget is spent: a 409 that says to submit."""


class CallConflict(RuntimeError):
    """A `call_id` seen before with another call (another answer, or check against submit): a 409."""


class ConflictingCall(HTTPException):
    """`CallConflict` as the HTTP 409 it answers, told apart from the other 409s by the tool doors, which
    report it as bad input rather than as a spent budget."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


def new_episode_id() -> str:
    """A fresh episode id: `ep-` and 16 hex digits."""
    return f"ep-{secrets.token_hex(8)}"


def is_episode_id(text: str) -> bool:
    return _EPISODE_ID.fullmatch(text) is not None


_COLUMNS = "episode_id, problem_id, profile, checks, checks_used, check_cost, expires"


class EpisodeStore:
    """Episodes in SQLite: a file the workers share, or memory. Every method is one transaction."""

    def __init__(self, path: Path | None, max_sessions: int, ttl_s: float) -> None:
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self._lock = threading.Lock()  # one connection per process, used by the threadpool's threads
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            timeout=30,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")  # episodes are short-lived: no fsync per call
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS episodes (episode_id TEXT PRIMARY KEY, problem_id TEXT NOT NULL, "
            "profile TEXT NOT NULL, checks INTEGER NOT NULL, checks_used INTEGER NOT NULL, "
            "check_cost REAL NOT NULL, expires REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS episodes_expires ON episodes (expires)")
        # Calls made with a `call_id`: the episode as that call left it, so that a retry of the same call
        # (its answer lost on the way) gets the same answer instead of spending a second check, or finding
        # the episode ended by its own first attempt. Kept for the TTL after the call.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (episode_id TEXT NOT NULL, call_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, answer TEXT NOT NULL, problem_id TEXT NOT NULL, profile TEXT NOT NULL, "
            "checks INTEGER NOT NULL, checks_used INTEGER NOT NULL, check_cost REAL NOT NULL, "
            "expires REAL NOT NULL, PRIMARY KEY (episode_id, call_id))"
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def start(
        self, problem_id: str, profile: str, checks: int, check_cost: float, episode_id: str | None = None
    ) -> Row:
        """A new episode, under `episode_id` (a `new_episode_id()` handed out before) or a fresh id."""
        now = time.time()
        with self._transaction() as db:
            db.execute("DELETE FROM episodes WHERE expires <= ?", (now,))
            db.execute("DELETE FROM calls WHERE expires <= ?", (now,))
            (count,) = db.execute("SELECT count(*) FROM episodes").fetchone()
            if count >= self.max_sessions:
                raise EpisodeLimitError(
                    f"{count} episodes are open, the most this service holds; submit or delete "
                    f"(DELETE {PREFIX}/{{id}}) some, or wait: an unused episode is dropped after "
                    f"{self.ttl_s:g} s"
                )
            row = Row(
                episode_id or new_episode_id(), problem_id, profile, checks, 0, check_cost, now + self.ttl_s
            )
            try:
                db.execute(f"INSERT INTO episodes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", astuple(row))
            except sqlite3.IntegrityError:
                raise EpisodeExists(f"episode {row.episode_id} is already open") from None
        return row

    def get(self, episode_id: str) -> Row | None:
        with self._transaction() as db:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM episodes WHERE episode_id = ? AND expires > ?",
                (episode_id, time.time()),
            ).fetchone()
        return None if found is None else Row(*found)

    def touch(self, episode_id: str) -> bool:
        """Renew an open episode's TTL (a client's keepalive); whether it is open."""
        now = time.time()
        with self._transaction() as db:
            found = db.execute(
                "UPDATE episodes SET expires = ? WHERE episode_id = ? AND expires > ? RETURNING episode_id",
                (now + self.ttl_s, episode_id, now),
            ).fetchone()
        return found is not None

    @staticmethod
    def _replay(db: sqlite3.Connection, episode_id: str, call: Call | None, kind: str) -> Row | None:
        """The episode as an earlier attempt of `call` left it; None when this call is new."""
        if call is None:
            return None
        found = db.execute(
            f"SELECT kind, answer, {_COLUMNS.replace('episode_id, ', '')} FROM calls "
            "WHERE episode_id = ? AND call_id = ?",
            (episode_id, call.call_id),
        ).fetchone()
        if found is None:
            return None
        if (found[0], found[1]) != (kind, call.answer_key):
            raise CallConflict(
                f"call_id {call.call_id} was used for another call of this episode ({found[0]} with "
                "another answer): give each call its own call_id, and the same one only to its retries"
            )
        return Row(episode_id, *found[2:])

    @staticmethod
    def _record(db: sqlite3.Connection, call: Call | None, kind: str, row: Row, expires: float) -> None:
        if call is not None:
            values = (call.call_id, kind, call.answer_key, *astuple(replace(row, expires=expires)))
            marks = ", ".join("?" * len(values))
            db.execute(f"INSERT INTO calls (call_id, kind, answer, {_COLUMNS}) VALUES ({marks})", values)

    def spend_check(self, episode_id: str, call: Call | None = None) -> Row | None:
        """One check spent (and the TTL renewed); None if there is no such open episode. Raises
        `NoChecksLeft` when its budget is spent. A retry of `call` spends nothing and gets the episode as
        its first attempt left it."""
        now = time.time()
        with self._transaction() as db:
            replayed = self._replay(db, episode_id, call, "check")
            if replayed is not None:
                return replayed
            found = db.execute(
                "UPDATE episodes SET checks_used = checks_used + 1, expires = ? "
                f"WHERE episode_id = ? AND expires > ? AND checks_used < checks RETURNING {_COLUMNS}",
                (now + self.ttl_s, episode_id, now),
            ).fetchone()
            if found is None:
                spent = db.execute(
                    "SELECT checks FROM episodes WHERE episode_id = ? AND expires > ?", (episode_id, now)
                ).fetchone()
                if spent is not None:
                    raise NoChecksLeft(
                        f"no checks left (this episode had {spent[0]}); submit your answer with "
                        f"POST {PREFIX}/{episode_id}/submit"
                    )
                return None
            row = Row(*found)
            self._record(db, call, "check", row, now + self.ttl_s)
        return row

    def end(self, episode_id: str, call: Call | None = None) -> Row | None:
        """The episode removed and returned: exactly one caller gets it (and the retries of its `call`)."""
        now = time.time()
        with self._transaction() as db:
            replayed = self._replay(db, episode_id, call, "submit")
            if replayed is not None:
                return replayed
            found = db.execute(
                f"DELETE FROM episodes WHERE episode_id = ? AND expires > ? RETURNING {_COLUMNS}",
                (episode_id, now),
            ).fetchone()
            if found is None:
                return None
            row = Row(*found)
            self._record(db, call, "submit", row, now + self.ttl_s)
        return row

    def close(self) -> None:
        with self._lock:
            self._db.close()


def tool_note(checks: int) -> str:
    """How to use the tools, with the episode's budget."""
    return TOOL_INSTRUCTIONS.format(checks=checks, s="" if checks == 1 else "s")


def tool_answer(arguments: dict[str, Any]) -> AnswerRequest:
    """A `check_schedule` or `submit` tool call's arguments (`answer`, optionally `call_id`) as the
    request `/v1/episodes` takes, for the tool doors; ValueError or ValidationError when they are not."""
    unknown = sorted(set(arguments) - {"answer", "call_id"})
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}: the tool takes `answer` and, optionally, `call_id`")
    return AnswerRequest.model_validate({key: arguments.get(key) for key in ("answer", "call_id")})


def tool_prompt(prompt: list[ChatMessage], checks: int) -> list[ChatMessage]:
    """The problem's prompt with the tool instructions appended to its system message."""
    system, *rest = prompt
    return [ChatMessage(role=system.role, content=f"{system.content}\n\n{tool_note(checks)}"), *rest]


def draft_value(events: list[dict[str, object]] | None, entry: Entry) -> int:
    """Σ weight × duration over the distinct problem events among `events` (wire `ReadEvent`s), from the
    values the scoring index holds for each event."""
    indices = {e.get("problem_index") for e in events or ()}
    return sum(entry.index.values[i] for i in indices if isinstance(i, int))


_FULL: dict[int | str, dict[str, Any]] = {
    429: {"description": "As many episodes are open as the service holds", "model": ErrorResponse}
}
_SPENT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The episode's checks are spent (submit), or `call_id` names another call",
        "model": ErrorResponse,
    }
}
_REUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "`call_id` names another call of this episode", "model": ErrorResponse}
}


def _json(model: EpisodeState) -> Response:
    return Response(content=model.model_dump_json(), media_type="application/json")


class EpisodeCalls:
    """Start, check, submit and delete over `episodes` and `store`'s problems, answering clear HTTP errors:
    what `/v1/episodes` serves, and what every front end in another protocol reuses (the ORS routes,
    env_server/service/integrations/openreward.py)."""

    def __init__(self, store: ProblemStore, settings: Settings, episodes: EpisodeStore) -> None:
        self.store, self.settings, self.episodes = store, settings, episodes
        self.picker = SchedulingEnv(store, settings)

    def entry_of(self, row: Row) -> Entry:
        entry = self.store.get(row.problem_id)
        if entry is None:  # the service was restarted with other problems under the same file
            raise HTTPException(404, f"problem {clip(row.problem_id)} of this episode is no longer served")
        return entry

    def _score(self, row: Row, entry: Entry, answer: str, events: bool) -> dict[str, object]:
        def lookup(_: str) -> ProblemIndex:
            return entry.index

        item = ScoreItem(problem_id=row.problem_id, completion=answer)
        profile = get_profile(row.profile)
        return score_items_wire([item], profile, lookup, self.settings.max_completion_chars, events=events)[0]

    def checked_id(self, episode_id: str) -> str:
        if not _EPISODE_ID.fullmatch(episode_id):
            raise HTTPException(404, f"no episode {clip(episode_id)} (ids are ep- and 16 hex digits)")
        return episode_id

    def gone(self, episode_id: str) -> HTTPException:
        return HTTPException(
            404,
            f"no open episode {episode_id}: it ended (submitted or deleted), expired after "
            f"{self.settings.episode_ttl_s:g} s unused, or the service restarted; start a new one",
        )

    def start(self, req: EpisodeStart, episode_id: str | None = None) -> EpisodeStarted:
        """A new episode (under `episode_id` when given, else a fresh id); 404, 422 or 429 otherwise."""
        if req.profile not in PROFILES:
            raise Unprocessable(
                f"unknown profile {clip(req.profile)}; profiles: {sorted(PROFILES)}", ["body", "profile"]
            )
        checks = self.settings.episode_checks if req.checks is None else req.checks
        if checks > self.settings.episode_max_checks:
            raise Unprocessable(
                f"checks={checks} is over this service's limit of {self.settings.episode_max_checks}",
                ["body", "checks"],
            )
        try:
            problem = self.picker.pick(
                OpenEnvResetRequest(
                    problem_id=req.problem_id, split=req.split, index=req.index, seed=req.seed
                )
            )
        except EnvError as e:
            raise (HTTPException(404, str(e)) if e.status == 404 else Unprocessable(str(e))) from None
        try:
            row = self.episodes.start(problem.id, req.profile, checks, req.check_cost, episode_id)
        except EpisodeLimitError as e:
            raise HTTPException(429, str(e)) from None
        except EpisodeExists as e:
            raise HTTPException(409, str(e)) from None
        return EpisodeStarted(
            **row.fields(time.time()),
            prompt=tool_prompt(build_prompt(problem, req.prompt_style), checks),
            tool_instructions=tool_note(checks),
            events=problem.events,
            priorities=problem.priorities,
        )

    def state(self, episode_id: str) -> EpisodeState:
        row = self.episodes.get(self.checked_id(episode_id))
        if row is None:
            raise self.gone(episode_id)
        return row.state(time.time())

    async def check(self, episode_id: str, req: AnswerRequest) -> CheckResult:
        """One check spent on a draft: 404 (no open episode) or 409 (no checks left) otherwise."""
        self.checked_id(episode_id)
        try:
            row = await run_in_threadpool(self.episodes.spend_check, episode_id, Call.of(req))
        except NoChecksLeft as e:
            raise HTTPException(409, str(e)) from None
        except CallConflict as e:
            raise ConflictingCall(str(e)) from None
        if row is None:
            raise self.gone(episode_id)
        entry = self.entry_of(row)
        wire = await run_in_threadpool(self._score, row, entry, req.answer, True)
        read = wire.get("events")
        return CheckResult(
            **row.fields(time.time()),
            verdict=wire["verdict"],
            violations=wire["violations"],
            value=draft_value(read if isinstance(read, list) else None, entry),
            events=read if req.return_events else None,
        )

    async def submit(self, episode_id: str, req: AnswerRequest) -> SubmitResult:
        """The answer scored with the episode's profile, less the checks' cost; the episode ends (404 when
        none is open)."""
        self.checked_id(episode_id)
        try:
            row = await run_in_threadpool(self.episodes.end, episode_id, Call.of(req))
        except CallConflict as e:
            raise ConflictingCall(str(e)) from None
        if row is None:
            raise self.gone(episode_id)
        entry = self.entry_of(row)
        wire = await run_in_threadpool(self._score, row, entry, req.answer, req.return_events)
        result = ScoreResult.model_validate(wire)
        penalty = row.check_cost * row.checks_used
        reward = max(0.0, (result.reward or 0.0) - penalty)
        fields = {**row.fields(time.time()), "expires_in_s": 0.0}
        return SubmitResult(**fields, reward=reward, check_penalty=penalty, result=result)

    def delete(self, episode_id: str) -> bool:
        """Whether an open episode was ended."""
        return self.episodes.end(self.checked_id(episode_id)) is not None


def episodes_router(calls: EpisodeCalls) -> APIRouter:
    """The `/v1/episodes` routes over `calls`."""
    router = APIRouter(prefix=PREFIX, tags=["episodes"])

    @router.post("", status_code=201, response_model=EpisodeStarted, responses=_FULL)
    def start(req: EpisodeStart) -> Response:
        """Start an episode: a problem (by `problem_id`, or `split` with `index`, `seed` or at random),
        its prompt with the tool instructions, and the check budget."""
        started = calls.start(req)
        return Response(content=started.model_dump_json(), status_code=201, media_type="application/json")

    @router.get("/{episode_id}", response_model=EpisodeState)
    def state(episode_id: str) -> Response:
        """Where an open episode stands: its problem, budget and time left."""
        return _json(calls.state(episode_id))

    @router.post("/{episode_id}/check", response_model=CheckResult, responses=_SPENT)
    async def check(episode_id: str, req: AnswerRequest) -> Response:
        """Check a draft, spending one check: the rules it breaks and its value, never the optimum. 409
        when the budget is spent (the episode stays open for `submit`)."""
        return _json(await calls.check(episode_id, req))

    @router.post("/{episode_id}/submit", response_model=SubmitResult, responses=_REUSED)
    async def submit(episode_id: str, req: AnswerRequest) -> Response:
        """Score the answer with the episode's profile (as `/v1/score`) and end the episode."""
        done = await calls.submit(episode_id, req)
        exclude = None if req.return_events else {"result": {"events"}}  # as /v1/score leaves it out
        return Response(content=done.model_dump_json(exclude=exclude), media_type="application/json")

    @router.delete("/{episode_id}", status_code=204)
    def delete(episode_id: str) -> Response:
        """Abandon an open episode (frees its place at once)."""
        if not calls.delete(episode_id):
            raise calls.gone(episode_id)
        return Response(status_code=204)

    return router


def default_episode_db() -> Path:
    """A fresh file in the temporary directory for one service's workers (`sched-env serve`)."""
    import tempfile

    handle, name = tempfile.mkstemp(prefix="sched-episodes-", suffix=".sqlite3")
    os.close(handle)
    return Path(name)
