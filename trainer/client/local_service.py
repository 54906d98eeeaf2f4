"""Start the environment service as a child process on a free local port, for one-command runs.

`make demo` and `sched-train learn` (without `--env_url`) use it: the service runs as its own process
(`python -m env_server.cli serve`), so the trainer still reaches it only over HTTP, and it is stopped
when the block ends, whatever happened inside.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(train_size: int = 256, test_size: int = 16) -> tuple[subprocess.Popen[bytes], str]:
    """`sched-env serve` on a free local port with small generated splits, so it starts at once."""
    port = free_port()
    env = {
        **os.environ,
        "SCHED_TRAIN_SIZE": str(train_size),
        "SCHED_TEST_SIZE": str(test_size),
        "SCHED_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "env_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL), f"http://127.0.0.1:{port}"


def stop_service(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def local_service(train_size: int = 256, test_size: int = 16) -> Iterator[str]:
    """Run the service for the duration of the block; yields its base URL (not yet known healthy)."""
    process, url = start_service(train_size, test_size)
    try:
        yield url
    finally:
        stop_service(process)
