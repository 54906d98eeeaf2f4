"""OpenRLHF's own remote reward client (`SingleTurnAgentExecutor`, openrlhf 0.11.2 from the registry) against
a live service: the rollout step of `train_ppo_ray` builds the query itself (chat-templated prompt and
answer decoded with its special tokens, `<|im_end|>` included) and posts it to `/get_reward`, and its batch
path shards queries over two reward URLs; every reward equals `/v1/score`'s for the answer. OpenRLHF runs
in a fresh interpreter with .venv/clients/openrlhf on its path (`make test` installs it there without
dependencies: it pins flash-attn and deepspeed, CUDA builds); tests/env_server/service/openrlhf_remote_reward.py
is OpenRLHF's side, with a stand-in for its vLLM engine."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import CLIENTS, LiveServer, missing_tool, run_client_script

OPENRLHF = CLIENTS / "openrlhf"
SCRIPT = Path(__file__).with_name("openrlhf_remote_reward.py")


def test_openrlhf_remote_reward_client_scores_through_the_service(live_server: LiveServer) -> None:
    from trainer.training.model_prep import resolve_model

    if not (OPENRLHF / "openrlhf").is_dir():
        missing_tool("OpenRLHF is not installed (`make test` installs it into .venv/clients/openrlhf)")
    model = resolve_model("smollm2-135m-instruct")
    out = run_client_script(sys.executable, SCRIPT, live_server.url, model, pythonpath=OPENRLHF)
    assert out["openrlhf"] == "0.11.2"
    expected = out["expected"]
    assert expected[:2] == [100.0, 0.0] and 0.0 < expected[2] < 100.0  # gold, empty, fewer events
    assert [r["reward"] for r in out["rollouts"]] == [
        [e] for e in expected
    ]  # through execute(), EOS included
    assert [r["scores"] for r in out["rollouts"]] == [[e / 100] for e in expected]
    assert all(r["logs"] == ["format", "order", "score", "score_ratio"] for r in out["rollouts"])
    assert out["batch"] == expected  # six queries sharded over two URLs
