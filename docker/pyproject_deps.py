"""Print the requirements of `pyproject.toml` (base, plus the extras named), one per line.

The images install these first, in a layer that only changes when `pyproject.toml` does, then copy the
source and `pip install --no-deps .`: editing code does not reinstall torch.

    python pyproject_deps.py > requirements.txt              # the service: base dependencies only
    python pyproject_deps.py train vllm > requirements.txt   # the trainer
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml has {sorted(optional)}")
    return list(project["dependencies"]) + [r for e in extras for r in optional[e]]


if __name__ == "__main__":
    here = Path.cwd() / "pyproject.toml"
    print("\n".join(requirements(here, sys.argv[1:])))
