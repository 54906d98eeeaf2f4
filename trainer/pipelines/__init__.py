"""One-command pipelines: `learn` (eval, SFT, eval, GRPO, eval, report) and `demo` (its short version)."""
