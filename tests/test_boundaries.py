"""The architecture, enforced: which package may import which, and no import circle anywhere.

Every import counts, also the lazy ones inside functions (they still tie the modules together):

- `env_server` and `trainer` never import each other; `shared_schema` imports neither.
- Inside `env_server`, layers from the bottom: `task` (problems, generator, solver, prompts) → `scoring`
  (the engine) → `service` (HTTP) → `runtime` (processes) → `cli`. A package imports only its own layer
  and the ones below; the scoring engine takes the task's problems and solver but not the generator's
  presets. Only `service` imports FastAPI or Starlette.
- Inside `trainer`: `client` → `evaluation` and `training` and `integrations` (side by side: evaluation
  never imports training except `training.model_prep`, the one place a model is loaded and its dtype
  chosen) → `pipelines` → `cli`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared_schema", "env_server", "trainer")
FORBIDDEN = {"env_server": {"trainer"}, "trainer": {"env_server"}, "shared_schema": {"trainer", "env_server"}}
LAYERS = {
    "env_server": ["task", "scoring", "service", "runtime", "cli"],
    "trainer": ["client", ("evaluation", "training", "integrations"), "pipelines", "cli"],
}
ALLOWED_ACROSS = {("trainer.evaluation", "trainer.training.model_prep")}
WEB_FRAMEWORKS = {"fastapi", "starlette", "fastapi_offline"}


def modules() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its own name)."""
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = modules()


def imports(path: Path) -> set[str]:
    """Every absolute import in a file, anywhere in it; `from pkg import mod` names the submodule."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES
            )
    return names


def edges() -> Iterator[tuple[str, str]]:
    """(importer, imported) between the project's modules; a module importing its own ancestor package
    (for a sibling extension such as `_core`) does not count."""
    for name, path in MODULES.items():
        for target in imports(path):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name and not name.startswith(target + "."):
                yield name, target


def layer(name: str) -> tuple[str, int] | None:
    """The top package and layer number of a module inside `env_server` or `trainer`, if it has one."""
    top, _, rest = name.partition(".")
    if top not in LAYERS or not rest:
        return None
    first = rest.split(".")[0]
    for depth, entry in enumerate(LAYERS[top]):
        if first == entry or (isinstance(entry, tuple) and first in entry):
            return top, depth
    raise AssertionError(f"{name} sits in no layer of tests/test_boundaries.py: add its package to LAYERS")


def _subpackage(name: str) -> str:
    return ".".join(name.split(".")[:2])


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_boundaries(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files
    offenders = {
        str(f.relative_to(ROOT)): {n.split(".")[0] for n in imports(f)} & FORBIDDEN[package] for f in files
    }
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_every_module_sits_in_a_layer() -> None:
    inside = [name for name in MODULES if name.split(".")[0] in LAYERS and "." in name]
    assert inside and all(layer(name) is not None for name in inside)


def test_packages_import_only_their_own_layer_and_those_below() -> None:
    upward = []
    for importer, imported in edges():
        a, b = layer(importer), layer(imported)
        if a is None or b is None or a[0] != b[0]:
            continue
        if a[1] < b[1] or (
            a[1] == b[1]
            and _subpackage(importer) != _subpackage(imported)
            and (_subpackage(importer), imported) not in ALLOWED_ACROSS
        ):
            upward.append(f"{importer} -> {imported}")
    assert upward == []


def test_the_scoring_engine_takes_problems_and_the_solver_but_not_the_generator() -> None:
    taken = {b for a, b in edges() if a.startswith("env_server.scoring")}
    assert {t for t in taken if t.startswith("env_server.") and not t.startswith("env_server.scoring")} <= {
        "env_server.task.problems",
        "env_server.task.solver",
    }


def test_only_the_service_imports_the_web_framework() -> None:
    users = sorted(
        name for name, path in MODULES.items() if {n.split(".")[0] for n in imports(path)} & WEB_FRAMEWORKS
    )
    assert users and all(name.startswith("env_server.service") for name in users), users


def test_no_import_circle_anywhere() -> None:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for a, b in edges():
        graph[a].add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_the_checks_see_the_layout() -> None:
    """Guards the checks above against passing vacuously: the known edges are found."""
    found = set(edges())
    assert ("env_server.scoring.profiles", "env_server.scoring.parsing") in found
    assert ("env_server.service.app", "env_server.scoring.profiles") in found
    assert ("trainer.evaluation.backends", "trainer.evaluation.hf_backend") in found  # a lazy import
    assert ("trainer.pipelines.learn", "trainer.training.grpo") in found
