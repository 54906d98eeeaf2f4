"""OpenRLHF remote reward model: `POST /get_reward`, for `--remote_rm_url http://HOST:8000/get_reward`.

OpenRLHF posts the decoded prompt+response texts, the prompt texts and the dataset labels; each label here
is a problem id or the problem as JSON. The completion scored is the query with its prompt removed from the
front and the end-of-sequence token removed from its end: OpenRLHF decodes the rollout with its special
tokens (`SingleTurnAgentExecutor`: `skip_special_tokens=False`), so a query ends `</schedule><|im_end|>`,
where TRL's reward functions get the text without them. It goes through `score_items`, so `rewards` equal
`/v1/score`'s `reward` for that text.
"""

from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import ValidationError

from env_server.scoring.batch import ProblemCache, TimeBudgetExceeded, score_items_wire
from env_server.scoring.profiles import DEFAULT_PROFILE, get_profile
from env_server.service.errors import Unprocessable
from env_server.service.settings import Settings
from env_server.service.store import ProblemStore
from shared_schema import ScoreItem
from shared_schema.integrations import OpenRLHFRewardRequest, OpenRLHFRewardResponse, label_to_item

# The spellings tokenizers give their end-of-sequence and padding tokens: `<|im_end|>`, `<|endoftext|>`,
# `<|eot_id|>` (`<|…|>`), `</s>`, `<eos>`, `<end_of_turn>`, `<pad>`. A run of them ending the text is removed.
_END_TOKENS = re.compile(r"(?:<\|[A-Za-z0-9_.-]{1,40}\|>|</s>|<eos>|<end_of_turn>|<pad>)+\Z")


def strip_end_tokens(response: str) -> str:
    """`response` without the special tokens that end it (what a decode with `skip_special_tokens` drops
    there); the text before them, white space included, stays."""
    return _END_TOKENS.sub("", response) if response.endswith(">") else response  # the common case: no scan


def strip_prompt(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query.

    `query` normally starts with `prompt`. When detokenisation changed the prompt slightly (special tokens,
    white space), the text after the last occurrence of the prompt's final line is used; failing that, the
    whole query, which is safe because the `default` profile reads only the last `<schedule>` block.
    """
    if query.startswith(prompt):
        return query[len(prompt) :]
    tail = prompt.rstrip().rsplit("\n", 1)[-1]
    if tail and tail in query:
        return query[query.rindex(tail) + len(tail) :]
    return query


def openrlhf_router(
    store: ProblemStore, settings: Settings, problems: ProblemCache | None = None
) -> APIRouter:
    """The `/get_reward` route, scoring against `store` (inline problems through `problems`) within
    `settings`' limits."""
    router = APIRouter(tags=["integrations"])

    @router.post("/get_reward", response_model=OpenRLHFRewardResponse)
    async def get_reward(
        req: OpenRLHFRewardRequest,
        profile: Annotated[
            str, Query(max_length=64, description="Reward profile (see /v1/info)")
        ] = DEFAULT_PROFILE,
    ) -> Response:
        """Score an OpenRLHF batch; a label that names no problem fails the request (422), since a silent
        zero would train the model on a configuration mistake."""
        if len(req.query) > settings.max_batch_items:
            raise HTTPException(
                413, f"{len(req.query)} samples; the limit is {settings.max_batch_items} per request"
            )
        try:
            prof = get_profile(profile)
        except KeyError as e:
            raise Unprocessable(str(e.args[0]), ["query", "profile"]) from None
        items: list[ScoreItem] = []
        for i, (query, prompt, label) in enumerate(zip(req.query, req.prompts, req.labels, strict=True)):
            try:
                items.append(label_to_item(label, strip_end_tokens(strip_prompt(query, prompt))))
            except ValidationError as e:
                raise Unprocessable(_first_error(e), ["body", "labels", i]) from None
            except ValueError as e:
                raise Unprocessable(str(e), ["body", "labels", i]) from None
        deadline = time.monotonic() + settings.request_time_budget_s
        try:
            results = score_items_wire(
                items, prof, store.index, settings.max_completion_chars, problems, deadline
            )
        except TimeBudgetExceeded:
            raise HTTPException(503, f"over the {settings.request_time_budget_s:g} s time budget") from None
        bad = [(i, r["error"]) for i, r in enumerate(results) if r["reward"] is None]
        if bad:
            i, error = bad[0]
            more = f" (and {len(bad) - 1} more labels)" if len(bad) > 1 else ""
            raise Unprocessable(f"{error}{more}", ["body", "labels", i])
        rewards = [r["reward"] or 0.0 for r in results]
        logs = {c.name: [r["components"].get(c.name, 0.0) for r in results] for c in prof.components}
        logs["score_ratio"] = [r["score_ratio"] or 0.0 for r in results]
        body = OpenRLHFRewardResponse(
            rewards=rewards, scores=[x / prof.max_reward for x in rewards], extra_logs=logs
        )
        return Response(content=body.model_dump_json(), media_type="application/json")

    return router


def _first_error(e: ValidationError) -> str:
    """A label's first validation error as `where: what`, without the (possibly huge) input."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', '')} ({e.error_count()} errors)"
