"""The scoring core, compiled: `python -m env_server.scoring.native` builds it in place.

`parsing`, `checks` and `profiles` are plain, fully typed Python. mypyc compiles them together, in one
group: one shared library holds the compiled code of all three (`env_server/scoring/core__mypyc…so`, where
calls between them are C calls), and each module gets a small extension next to its source
(`env_server/scoring/parsing.cpython-311-x86_64-linux-gnu.so`, …) that Python imports in preference to the
`.py`. One group costs one type-check and one compile of mypyc's runtime, not three (46 s rather than 100 s
here). The results are the same bit for bit (the reward digest, the property test
against the published code and gold = 100 run on whichever is loaded, and the digest also on a copy of
the sources without the extensions); how much faster the compiled core scores is in docs/benchmarks.md.

The `default` profile's scoring is also written in C (`_core.c`, built here with setuptools into
`env_server/scoring/_core…so`): its parser, the analysis and violation search both profiles share, and
the whole `profiles.score` around them. `parsing.parse_strict`, `checks.analyse`, `checks.violations` and the
`default` profile's `native` score are those functions when the extension is built, and their Python
specifications (`parse_strict_reference`, `analyse_reference`, `violations_reference`,
`profiles.score_reference`) otherwise; tests compare each pair on generated and adversarial input. See
docs/benchmarks.md for what each step gained.

`make install` and `Dockerfile.env` run this module. Where a C compiler exists the build must succeed
(a failure stops `make install`: the code production runs is the code under test); without one it says
so in a banner and the service runs the same code as pure Python. The test suite refuses to run on pure
Python where a compiler exists (tests/conftest.py), unless asked to with `SCHED_PURE_PYTHON=1`. A
compiled module older than its source would be stale code: `stale()` names them, the test suite
refuses to run with one, and `make native` rebuilds.

    python -m env_server.scoring.native               # build; exit 1 if a C compiler exists and it fails
    python -m env_server.scoring.native --require     # exit 1 unless every module was compiled
    python -m env_server.scoring.native --allow-pure  # exit 0 on a failed build too (pure Python then)
    python -m env_server.scoring.native --status   # what is loaded: compiled or pure Python
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CORE = ("parsing", "checks", "profiles")  # compiled by mypyc from `<module>.py`, in one group
GROUP = "core"  # the group's shared library: `core__mypyc…so`
EXTENSIONS = ("_core",)  # written in C: `<module>.c`
BUILT = CORE + EXTENSIONS

# Builds a C extension in place (in the package directory), with its temporary files elsewhere. Extra
# compiler flags follow the module's name; the `-fsanitize=` ones are passed to the linker too.
_SETUP = """
import sys, tempfile
from setuptools import Extension, setup
package, module, *flags = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:
    setup(
        name="env_server-native",
        ext_modules=[Extension(f"{package}.{module}", [f"{package.replace('.', '/')}/{module}.c"],
                               extra_compile_args=["-O2", *flags],
                               extra_link_args=[f for f in flags if f.startswith("-fsanitize")])],
        script_args=["-q", "build_ext", "--inplace", "--build-temp", tmp, "--build-lib", tmp],
    )
"""

# Compiles the core modules as one mypyc group in place, with mypyc's generated C and setuptools' temporary
# files elsewhere (the `mypyc` command would leave them in `build/`).
_MYPYC_SETUP = """
import sys, tempfile
from mypyc.build import mypycify
from setuptools import setup
package, group, *modules = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:
    setup(
        name="env_server-native",
        ext_modules=mypycify([f"{package.replace('.', '/')}/{m}.py" for m in modules],
                             group_name=f"{package}.{group}", target_dir=f"{tmp}/mypyc"),
        script_args=["-q", "build_ext", "--inplace", "--build-temp", tmp, "--build-lib", tmp],
    )
"""


def location(package: Path = PACKAGE) -> tuple[Path, str]:
    """The directory a package's import path starts from, and the package's dotted name.

    `env_server/scoring` gives the repository root and `env_server.scoring`: the build runs there, so
    mypyc and setuptools name the modules as Python imports them."""
    top, parts = package.parent, [package.name]
    while (top / "__init__.py").is_file():
        parts.insert(0, top.name)
        top = top.parent
    return top, ".".join(parts)


def extension_command(module: str, package: Path = PACKAGE, flags: tuple[str, ...] = ()) -> list[str]:
    """The command that builds the C extension `module` in place; run it in `location(package)[0]`."""
    return [sys.executable, "-c", _SETUP, location(package)[1], module, *flags]


def mypyc_command(package: Path = PACKAGE) -> list[str]:
    """The command compiling the core modules (one mypyc group) in place; run in `location(package)[0]`."""
    return [sys.executable, "-c", _MYPYC_SETUP, location(package)[1], GROUP, *CORE]


def source(module: str, package: Path = PACKAGE) -> Path:
    return package / f"{module}.{'py' if module in CORE else 'c'}"


def compiled_files(module: str, package: Path = PACKAGE) -> list[Path]:
    """The extension files built for `module` (for a core module: its own and the group's shared library)."""
    names = (module, f"{GROUP}__mypyc") if module in CORE else (module,)
    return [package / f"{n}{suffix}" for n in names for suffix in importlib.machinery.EXTENSION_SUFFIXES]


def stale(package: Path = PACKAGE) -> list[str]:
    """Core modules with a compiled file older than their source: Python would import old code.

    Only in a source checkout (a `pyproject.toml` beside the package), where sources get edited; an
    installed package's file times say nothing about which was built from which."""
    if not (location(package)[0] / "pyproject.toml").is_file():
        return []
    out = []
    for module in BUILT:
        src = source(module, package)
        if not src.is_file():
            continue
        written = src.stat().st_mtime
        if any(f.is_file() and f.stat().st_mtime < written for f in compiled_files(module, package)):
            out.append(module)
    return out


def status() -> dict[str, bool]:
    """Core module → whether the loaded module is the compiled one (for `_core`: whether
    `parsing.parse_strict`, `checks.analyse` and `checks.violations` are the C functions rather than
    their references)."""
    loaded = {m: importlib.import_module(f"{__package__}.{m}") for m in CORE}
    done = {m: not str(mod.__file__).endswith(".py") for m, mod in loaded.items()}
    parsing = loaded["parsing"]  # one extension provides all three functions
    done["_core"] = parsing.parse_strict is not parsing.parse_strict_reference
    return done


def describe() -> str:
    """One line for the service's start-up log."""
    done = status()
    if all(done.values()):
        text = "compiled (mypyc, and the default profile's score in C)"
    elif any(done.values()):
        text = "partly compiled: " + ", ".join(m for m, ok in done.items() if ok)
    else:
        text = "pure Python (`python -m env_server.scoring.native` compiles it)"
    old = stale()
    return f"{text}; STALE, rebuild with `make native`: {', '.join(old)}" if old else text


def clean(package: Path = PACKAGE) -> None:
    for module in BUILT:
        for f in compiled_files(module, package):
            f.unlink(missing_ok=True)
    for f in package.glob("*__mypyc.*"):  # also the one-group-per-module libraries of builds before 2026-12
        f.unlink()


def build(package: Path = PACKAGE) -> list[str]:
    """Compile the core modules (one mypyc group) and each C extension in place; returns those that failed."""
    clean(package)  # a failed build must not leave an older compiled module in front of the new source
    failed: list[str] = []
    top = location(package)[0]
    steps = [(CORE, mypyc_command(package))] + [((m,), extension_command(m, package)) for m in EXTENSIONS]
    for modules, cmd in steps:
        done = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
        if done.returncode != 0:
            failed.extend(modules)
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
            continue
        # Built now: say so in the file times. setuptools copies a file it did not need to rebuild (mypyc's
        # small shim module) from its build directory with that file's old time, which `stale` would
        # otherwise take for a build older than the source.
        for module in modules:
            for f in compiled_files(module, package):
                if f.is_file():
                    os.utime(f)
    return failed


def compiler() -> str | None:
    """The C compiler Python builds extensions with (`sysconfig`'s `CC`, else `cc`), if it is installed."""
    configured = str(sysconfig.get_config_var("CC") or "").split()
    for name in (*configured[:1], "cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


NO_COMPILER = """
**********************************************************************************************
* No C compiler found: the scoring core runs as PURE PYTHON (the same results, several times *
* slower). Install one (Debian: apt-get install gcc) and run `make native` to compile it.    *
**********************************************************************************************
"""


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--require", action="store_true", help="exit 1 unless every module compiled")
    cli.add_argument(
        "--allow-pure",
        action="store_true",
        help="exit 0 when the build fails even though a C compiler exists (the core then runs as Python)",
    )
    cli.add_argument("--status", action="store_true", help="print what is loaded; build nothing")
    cli.add_argument("--clean", action="store_true", help="remove the compiled modules")
    opts = cli.parse_args(argv)
    if opts.status:
        print(f"scoring core: {describe()}")
        return 0
    if opts.clean:
        clean()
        return 0
    if compiler() is None and not opts.require:
        sys.stderr.write(NO_COMPILER)
        return 0
    failed = build()
    if failed:
        print(f"could not compile {', '.join(failed)}: the scoring core runs as pure Python")
        clean()
        return 0 if opts.allow_pure and not opts.require else 1
    print(f"scoring core compiled: {', '.join(CORE)} with mypyc, {', '.join(EXTENSIONS)} from C")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
