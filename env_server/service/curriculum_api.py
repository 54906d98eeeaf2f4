"""`/v1/curriculum`: closed-loop curriculum sessions over HTTP (docs/contract.md section 7).

The logic is env_server/task/curriculum.py; this module keeps the sessions. A session's whole state is one
small JSON document (`shared_schema.curriculum.CurriculumState`), so it survives a restart two ways:

- with `SCHED_CURRICULUM_DIR` set, every change is written there (one file per session, replaced
  atomically, under a file lock, so replicas on one host that share the directory share the sessions);
- whatever the setting, the trainer holds the last state it was sent and can put it back
  (`PUT /v1/curriculum/{id}`), which is what `trainer.training.curriculum` does when a restarted service
  answers 404.

Scoring stays stateless: the served problems' ids resolve on any replica (`train-c3-000042`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from pydantic import ValidationError

from env_server.service.errors import Unprocessable
from env_server.service.store import ProblemStore
from env_server.task import curriculum
from env_server.task.prompts import build_prompt
from shared_schema import Problem, PromptStyle
from shared_schema.curriculum import (
    CurriculumConfig,
    CurriculumProblem,
    CurriculumState,
    CurriculumStatus,
    NextRequest,
    NextResponse,
    ReportRequest,
)

_SESSION_ID = re.compile(r"cur-[0-9a-f]{16}")


class SessionLimitError(RuntimeError):
    """The service holds as many sessions as it may: a 429 that says how to free one."""


class Sessions:
    """Curriculum sessions by id: in memory (an LRU bounded by `max_sessions`), and on disk when
    `directory` is set. Every change reads the newest state (the disk's, when there is one), applies one
    pure update and writes it back under a lock."""

    def __init__(self, directory: Path | None, max_sessions: int) -> None:
        self.directory = directory
        self.max_sessions = max_sessions
        self._memory: OrderedDict[str, CurriculumState] = OrderedDict()
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _path(self, session_id: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{session_id}.json"

    @contextlib.contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        with self._lock:
            if self.directory is None:
                yield
                return
            with open(self.directory / f"{session_id}.lock", "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, session_id: str) -> CurriculumState | None:
        if self.directory is not None:
            path = self._path(session_id)
            if path.is_file():
                return CurriculumState.model_validate_json(path.read_bytes())
        return self._memory.get(session_id)

    def _write(self, state: CurriculumState) -> None:
        if self.directory is not None:
            path = self._path(state.session_id)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(state.model_dump_json(), encoding="utf-8")
            os.replace(tmp, path)
        self._memory[state.session_id] = state
        self._memory.move_to_end(state.session_id)
        while len(self._memory) > self.max_sessions:
            self._memory.popitem(last=False)

    def count(self) -> int:
        if self.directory is not None:
            return sum(1 for _ in self.directory.glob("cur-*.json"))
        return len(self._memory)

    def create(self, config: CurriculumConfig) -> CurriculumState:
        if self.count() >= self.max_sessions:
            raise SessionLimitError(
                f"this service holds {self.max_sessions} curriculum sessions "
                "(SCHED_CURRICULUM_MAX_SESSIONS); DELETE /v1/curriculum/{id} the ones that are done"
            )
        session_id = f"cur-{secrets.token_hex(8)}"
        state = curriculum.new_state(session_id, config)
        with self._locked(session_id):
            self._write(state)
        return state

    def get(self, session_id: str) -> CurriculumState | None:
        if _SESSION_ID.fullmatch(session_id) is None:
            return None
        with self._locked(session_id):
            return self._read(session_id)

    def put(self, state: CurriculumState) -> None:
        with self._locked(state.session_id):
            if self._read(state.session_id) is None and self.count() >= self.max_sessions:
                raise SessionLimitError(f"this service holds {self.max_sessions} curriculum sessions")
            self._write(state)

    def update(
        self, session_id: str, change: Callable[[CurriculumState], CurriculumState]
    ) -> CurriculumState | None:
        if _SESSION_ID.fullmatch(session_id) is None:
            return None
        with self._locked(session_id):
            state = self._read(session_id)
            if state is None:
                return None
            new = change(state)
            self._write(new)
            return new

    def delete(self, session_id: str) -> bool:
        if _SESSION_ID.fullmatch(session_id) is None:
            return False
        with self._locked(session_id):
            found = self._memory.pop(session_id, None) is not None
            if self.directory is not None:
                for path in (self._path(session_id), self.directory / f"{session_id}.lock"):
                    if path.is_file():
                        found = found or path.suffix == ".json"
                        path.unlink()
            return found


def status(state: CurriculumState) -> CurriculumStatus:
    rungs = curriculum.ladder(state.config)
    rung = rungs[state.rung]
    return CurriculumStatus(state=state, level=rung.level, guided=rung.guided, rungs=list(rungs))


def _missing(session_id: str) -> HTTPException:
    return HTTPException(
        404,
        f"no curriculum session {session_id[:40]!r} here: it ended, or the service restarted without "
        "SCHED_CURRICULUM_DIR; PUT /v1/curriculum/{id} with the last state you were sent restores it",
    )


def curriculum_router(store: ProblemStore, sessions: Sessions) -> APIRouter:
    router = APIRouter(prefix="/v1/curriculum", tags=["curriculum"])

    @router.post("", response_model=CurriculumStatus)
    def create(config: CurriculumConfig | None = None) -> CurriculumStatus:
        try:
            return status(sessions.create(config or CurriculumConfig()))
        except curriculum.CurriculumError as e:
            raise Unprocessable(str(e)) from None
        except SessionLimitError as e:
            raise HTTPException(429, str(e)) from None

    @router.get("/{session_id}", response_model=CurriculumStatus)
    def get(session_id: str) -> CurriculumStatus:
        state = sessions.get(session_id)
        if state is None:
            raise _missing(session_id)
        return status(state)

    @router.put("/{session_id}", response_model=CurriculumStatus)
    def restore(session_id: str, state: CurriculumState) -> CurriculumStatus:
        if state.session_id != session_id or _SESSION_ID.fullmatch(session_id) is None:
            raise Unprocessable("the state's session_id must be the path's, a `cur-` id this service made")
        if state.rung >= len(curriculum.ladder(state.config)):
            raise Unprocessable(f"rung {state.rung} is past the ladder")
        try:
            sessions.put(state)
        except SessionLimitError as e:
            raise HTTPException(429, str(e)) from None
        return status(state)

    @router.delete("/{session_id}", status_code=204)
    def delete(session_id: str) -> Response:
        if not sessions.delete(session_id):
            raise _missing(session_id)
        return Response(status_code=204)

    @router.post("/{session_id}/next", response_model=NextResponse)
    def next_problems(session_id: str, req: NextRequest) -> NextResponse:
        served: list[tuple[Problem, PromptStyle, int]] = []

        def change(state: CurriculumState) -> CurriculumState:
            new, out = curriculum.serve(state, req.n, lambda lv, i: store.curriculum_entry(lv, i).problem)
            served.extend(out)
            return new

        try:
            state = sessions.update(session_id, change)
        except curriculum.CurriculumError as e:
            raise Unprocessable(str(e)) from None
        if state is None:
            raise _missing(session_id)
        rungs = curriculum.ladder(state.config)
        problems = []
        for problem, style, rung in served:
            problems.append(
                CurriculumProblem(
                    **problem.model_dump(),
                    prompt=build_prompt(problem, style),
                    prompt_style=style,
                    rung=rung,
                    level=rungs[rung].level,
                )
            )
        return NextResponse(**status(state).model_dump(), problems=problems)

    @router.post("/{session_id}/report", response_model=CurriculumStatus)
    def report(session_id: str, req: ReportRequest) -> CurriculumStatus:
        try:
            state = sessions.update(session_id, lambda s: curriculum.report(s, req.groups))
        except (curriculum.CurriculumError, ValidationError) as e:
            raise Unprocessable(str(e)) from None
        if state is None:
            raise _missing(session_id)
        return status(state)

    return router
