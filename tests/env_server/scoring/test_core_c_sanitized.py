"""The C steps of the scoring core under AddressSanitizer and UndefinedBehaviorSanitizer.

`_core.c` reads text that arrives over the network, so a read past a buffer or an overflow there would be
a crash or worse. This builds the extension again with `-fsanitize=address,undefined` into a copy of the
package and runs the comparison with the Python references there (token soups, analyses, violations,
whole scores),
with every Python allocation going through `malloc` so the sanitizer sees the extension's buffers.
Skipped where no C compiler or sanitizer runtime is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from env_server.scoring import native
from tests.conftest import copy_checkout

SANITIZE = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined")
FUZZ = """
import random
import env_server.scoring._core as core
assert core.__file__.startswith({root!r}), core.__file__
assert b"__asan_" in open(core.__file__, "rb").read()  # this build is instrumented
assert "libasan" in open("/proc/self/maps").read()  # and the sanitizer runtime is loaded
from env_server.scoring import parsing
from env_server.scoring.parsing import parse_published
from env_server.scoring.profiles import PROFILES
from tests.env_server.scoring.test_core_c import INDEXES, PROBLEMS, TOKENS, same, same_analysis, same_score
assert PROFILES["default"].native is core.score_strict
rng = random.Random(7)
for i in range(20_000):
    text = "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 40)))
    same(text)
    index = INDEXES[i % len(INDEXES)]
    same_analysis(parsing.parse_strict(text), index)
    same_analysis(parse_published(text), index)
    same_score(text, index, rng.choice([None, rng.randint(0, len(text))]))
    # every event of the problem, in any order: overlapping pairs dropped from the score
    events = rng.sample(PROBLEMS[i % len(PROBLEMS)].events, rng.randint(0, len(PROBLEMS[i % len(PROBLEMS)].events)))
    body = "".join(f"<event><name>{{e.name}}</name><start>{{e.start}}</start><end>{{e.end}}</end></event>" for e in events)
    same_score(f"<think>t</think><schedule>{{body}}</schedule>", index)
print("sanitized ok")
"""


def _runtime(name: str) -> str | None:
    """The path of a sanitizer runtime library (`libasan.so`) as the compiler knows it, or None."""
    cc = shutil.which("gcc")
    if cc is None:
        return None
    found = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def test_the_c_steps_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("no gcc with AddressSanitizer and UndefinedBehaviorSanitizer runtimes here")
    copy_checkout(tmp_path, "_core*.so")
    command = native.extension_command("_core", tmp_path / "env_server" / "scoring", SANITIZE)
    built = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "PYTHONMALLOC": "malloc",  # Python's own allocator would hide the extension's buffers
        "LD_PRELOAD": f"{asan} {ubsan}",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # the interpreter keeps objects until exit
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }
    done = subprocess.run(
        [sys.executable, "-c", FUZZ.format(root=str(tmp_path))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "sanitized ok" in done.stdout
