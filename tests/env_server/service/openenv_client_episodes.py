"""Episodes run by OpenEnv's own clients against a live service: run with the interpreter of the clients'
environment (`make test` builds it: .venv/clients/openenv), not the project's, so nothing here imports the
project. Prints one JSON line with what happened; tests/env_server/service/test_openenv_clients.py checks it.

    python openenv_client_episodes.py URL [--sessions N]

- the MCP tool door (`MCPToolClient(base_url=URL + "/openenv/tools")`): N episodes at once, each a session
  with `get_problem`, two checks (a bad draft, then the solver's answer), a third check past a budget of 2
  (refused), and `submit`; with openenv 0.10 also `reset` over the session's WebSocket first;
- the single-answer environment (`GenericEnvClient(base_url=URL + "/openenv")`): reset, then a step with
  the solver's answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import httpx
from openenv.core.generic_client import GenericEnvClient
from openenv.core.mcp_client import MCPToolClient

EMPTY = "<schedule></schedule>"


def client_version() -> str:
    """The distribution whose `openenv` package was imported (both ship one; PYTHONPATH picks)."""
    import openenv

    home = str(Path(openenv.__file__).resolve().parent.parent)
    found = [f"{d.metadata['Name']} {d.version}" for d in distributions(path=[home])]
    return next((f for f in found if f.lower().startswith("openenv")), "unknown")


def solve(url: str, problem: dict[str, Any]) -> str:
    spec = {"events": problem["events"], "priorities": problem["priorities"]}
    return str(httpx.post(f"{url}/v1/solve", json={"problem": spec}, timeout=30).json()["completion"])


async def tool_episode(url: str, i: int, reset: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with MCPToolClient(base_url=f"{url}/openenv/tools") as env:
        if reset:  # over the WebSocket attached to the client's session (openenv 0.10)
            result = await env.reset(seed=i, checks=2)
            out["reset_problem"] = getattr(result.observation, "problem_id", None)
        else:  # openenv-core 0.3's WebSocket is a session of its own: the tools' session keeps its problem
            out["reset_problem"] = None
        out["tools"] = [t.name for t in await env.list_tools()]
        problem = await env.call_tool("get_problem")
        out["problem"], out["checks"] = problem["problem_id"], problem["checks"]
        first = await env.call_tool("check_schedule", answer=EMPTY)
        answer = solve(url, problem)
        second = await env.call_tool("check_schedule", answer=answer)
        out["checks_seen"] = [first["verdict"], second["verdict"]]
        out["remaining"] = [first["remaining_checks"], second["remaining_checks"]]
        try:
            third = await env.call_tool("check_schedule", answer=answer)
            out["third"] = third.get("remaining_checks")
        except RuntimeError as e:  # the client's way to say a tool failed
            out["third"] = str(e)
        submitted = await env.call_tool("submit", answer=answer)
        out["reward"], out["verdict"] = submitted["reward"], submitted["result"]["verdict"]
        out["session"] = submitted["episode_id"]
    return out


async def single_answer(url: str) -> dict[str, Any]:
    async with GenericEnvClient(base_url=f"{url}/openenv") as env:
        first = await env.reset(seed=11)
        observation = first.observation
        answer = solve(url, observation)
        step = await env.step({"completion": answer})
        return {"problem": observation["problem_id"], "reward": step.reward, "done": step.done}


async def main() -> None:
    cli = argparse.ArgumentParser()
    cli.add_argument("url")
    cli.add_argument("--sessions", type=int, default=8)
    cli.add_argument("--reset", action="store_true", help="reset over the session's WebSocket (openenv 0.10)")
    opts = cli.parse_args()
    episodes = await asyncio.gather(*(tool_episode(opts.url, i, opts.reset) for i in range(opts.sessions)))
    print(
        json.dumps(
            {"client": client_version(), "episodes": episodes, "single": await single_answer(opts.url)}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
