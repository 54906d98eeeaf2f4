"""The reward path's view of a `/v1/score` answer: what a reward function reads, decoded without the rest.

A GRPO reward batch needs, per completion, the reward, its components, the verdict, the score ratio and
the error of an item that could not be scored; `ScoreResponse` also carries every violation with its
events, and validating all of it into pydantic models costs about as much as the service's scoring of the
batch (0.3–0.7 ms per 64). `EnvClient.rewards` decodes the same answer into these frozen structs with
msgspec, which checks the types of every field it keeps and skips the others without building them. The
fields, names and types are `shared_schema.ScoreResult`'s (a test checks them against it, and that both
decodings of real answers agree); `EnvClient.score` still returns the whole `ScoreResponse`.
"""

from __future__ import annotations

import msgspec

from shared_schema import Verdict


class RewardResult(msgspec.Struct, frozen=True):
    """One item's reward fields of a `ScoreResult`, as the service sent them."""

    reward: float | None
    components: dict[str, float] = {}
    verdict: Verdict | None = None
    score_ratio: float | None = None
    optimal_score: int | None = None
    error: str | None = None


class RewardResponse(msgspec.Struct, frozen=True):
    """A `ScoreResponse` without the violations and read events of its results."""

    reward_version: str
    profile: str
    results: list[RewardResult]


_decoder = msgspec.json.Decoder(RewardResponse)


class RewardDecodeError(ValueError):
    """The answer is not a `ScoreResponse` (a field missing or of the wrong type)."""


def decode_rewards(content: bytes) -> RewardResponse:
    """Decode a `/v1/score` answer's body; fields this view does not name are skipped."""
    try:
        return _decoder.decode(content)
    except msgspec.DecodeError as e:  # malformed JSON, or a field missing or of the wrong type
        raise RewardDecodeError(f"not a ScoreResponse: {e}") from e
