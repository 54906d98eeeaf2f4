"""trainer.training.distributed: a process of a multi-process launch ends with os._exit once its work is done (the
gloo teardown can deadlock otherwise); a single process returns and exits normally."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.training import distributed

ROOT = Path(__file__).resolve().parents[3]


class _Exited(Exception):
    pass


def _fake_exit(code: int) -> None:
    raise _Exited(code)


@pytest.mark.parametrize("world_size", [None, "1", "", "x"])
def test_a_single_process_returns(monkeypatch: pytest.MonkeyPatch, world_size: str | None) -> None:
    if world_size is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", world_size)
    monkeypatch.setattr(distributed.os, "_exit", _fake_exit)
    assert distributed.exit_if_distributed(0) is None
    assert distributed.launched_processes() == 1


@pytest.mark.parametrize("code", [0, 3])
def test_a_launched_process_exits_now_with_its_code(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.os, "_exit", _fake_exit)
    # pytest's own exit handlers and log handlers stay in place; that they run is checked below
    ran: list[str] = []
    monkeypatch.setattr(distributed.atexit, "_run_exitfuncs", lambda: ran.append("atexit"))
    monkeypatch.setattr(logging, "shutdown", lambda: ran.append("logging"))
    with pytest.raises(_Exited) as exited:
        distributed.exit_if_distributed(code)
    assert exited.value.args == (code,)
    assert ran == ["atexit", "logging"]


def test_output_is_flushed_and_finalizers_are_skipped() -> None:
    """In a real process: what was printed and logged arrives, exit handlers run (a tracker finishes its
    run there), the exit code is kept, and no object's teardown runs (a `__del__` that would hang, as
    gloo's process group does, is never reached)."""
    script = (
        "import atexit, logging\n"
        "from trainer.training.distributed import exit_if_distributed\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "class Hangs:\n"
        "    def __del__(self):\n"
        "        print('teardown ran', flush=True)\n"
        "def main():\n"
        "    trainer = Hangs()\n"
        "    atexit.register(print, ' tracker finished', end='')\n"
        "    print('model saved', end='')\n"
        "    logging.getLogger('t').info('logged')\n"
        "    exit_if_distributed(5)\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"WORLD_SIZE": "2", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5
    assert done.stdout == "model saved tracker finished"
    assert "logged" in done.stderr
