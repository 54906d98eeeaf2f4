"""Leaving a multi-process (`accelerate launch`, torchrun) run without the exit-time deadlock of gloo.

When a training process returns from `main()`, its trainer is freed, and with it the DDP `Reducer`, which
holds the last reference to the gloo process group (`destroy_process_group()` only unregisters it). The
Reducer is freed with the GIL held; the process group's destructor then joins its worker threads; and a
worker thread that still owns its last finished collective (an all-gather of tensors that have Python
objects) waits for the GIL to release them. Neither thread can move: the process never exits, and
`accelerate launch` waits for it forever. It happened in about one launch in five on a 2-core machine
(torch 2.13, gloo; see tests/trainer/training/test_accelerate_configs.py).

A process of a multi-process launch therefore ends with `os._exit` once its work is done, while the trainer
is still referenced: the exit handlers registered with `atexit` run first (a tracker such as wandb
finishes its run there), then the output is flushed, and the interpreter's teardown, where the deadlock
is, never starts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys


def launched_processes() -> int:
    """How many processes this launch has (`WORLD_SIZE`, set by torchrun and accelerate; 1 without)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def exit_if_distributed(code: int) -> None:
    """In a multi-process launch, flush everything and end the process now with `code`; else return."""
    if launched_processes() <= 1:
        return
    atexit._run_exitfuncs()  # what a normal exit would run (trackers, logging.shutdown, ...), in order
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing more to write
            stream.flush()
    os._exit(code)
