"""Evaluation harness: generate answers with any model or endpoint, score them through the service, report.

`sched-train eval` runs one model (`hf`, `vllm`, `openai`) or a reference policy (`solver`, `greedy_weight`,
`earliest_finish`) over a split or a dataset file; `compare` puts several runs in one report; `rescore`
scores stored completions again under another profile or reward version. Every verdict and reward comes
from the environment service (`/v1/score`); nothing here imports `env_server`.
"""
