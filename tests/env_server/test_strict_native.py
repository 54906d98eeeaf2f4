"""The strict parser in C (`env_server/_strict.c`) against its Python specification.

`parsing.parse_strict` is the C function when `python -m env_server.native` built it. It must return what
`parsing.parse_strict_reference` returns, field by field and of the same type, for every string: token
soups around every branch of the event pattern and the format check, white space and digits outside
ASCII, text stored as 1-, 2- and 4-byte characters, and mutations of realistic answers.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from env_server import native, parsing
from env_server.generator import generate_problem
from env_server.parsing import Parsed, parse_strict_reference
from env_server.problems import gold_completion

try:
    from env_server import _strict
except ImportError:  # pragma: no cover - only without a C compiler
    _strict = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(
    _strict is None and not any(f.is_file() for f in native.compiled_files("_strict")),
    reason="the C parser is not built (no C compiler): parse_strict is the Python reference",
)

TOKENS = [
    "<think>", "</think>", "think>", "<schedule>", "</schedule>", "<event>", "</event>", "<name>", "</name>",
    "<start>", "</start>", "<end>", "</end>", "09:00", "10:30", "9:00", "٠٩:٠٠", "1O:00", "99:99", ":",
    "<", "/", ">", "A", "Gym", " Gym ", "é", "日", "😀", " ", "\n", "\t", "\u2003", "\u3000", "\x1c",
    "\x85", "\xa0", "\u200b",
    "<event><name>A</name><start>09:00</start><end>10:00</end></event>",
    "<event>\n <name> B </name>\n<start>10:00</start> <end>11:30</end>\u2003</event>",
]  # fmt: skip
soup = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


def same(text: str) -> None:
    got, want = parsing.parse_strict(text), parse_strict_reference(text)
    assert type(got) is Parsed
    assert got == want, text
    for a, b in zip(got.keys, want.keys, strict=True):
        assert all(type(x) is str for x in a) and a == b
    assert all(type(x) is int for x in got.starts + got.ends)
    assert type(got.format_ok) is bool and type(got.has_schedule) is bool


@needs_c
def test_parse_strict_is_the_c_function_when_built() -> None:
    assert parsing.parse_strict is not parse_strict_reference
    assert native.status()["_strict"]


@settings(max_examples=4000, deadline=None)
@given(soup)
def test_token_soups(text: str) -> None:
    same(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from("<>/:0123456789 \n\u2003abeinmrst😀"), max_size=80))
def test_character_soups(text: str) -> None:
    same(text)


def _answers() -> list[str]:
    return [gold_completion(generate_problem(7, "train", i)) for i in range(40)]


@pytest.mark.parametrize("seed", range(6))
def test_mutated_answers(seed: int) -> None:
    """Realistic answers with characters deleted, inserted and replaced at random."""
    rng = random.Random(seed)
    alphabet = "<>/: \n\u20030123456789abc日😀"
    for text in _answers():
        same(text)
        for _ in range(25):
            chars = list(text)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(chars))
                op = rng.randrange(3)
                if op == 0:
                    del chars[i]
                elif op == 1:
                    chars.insert(i, rng.choice(alphabet))
                else:
                    chars[i] = rng.choice(alphabet)
            same("".join(chars))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<schedule></schedule>",
        "</schedule><schedule>",
        "<think>r</think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<think> </think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<think>r<think></think><schedule><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        " \u3000<think>r</think>\x85<schedule><event><name>\u2003A\xa0</name><start>09:00</start><end>10:00"
        "</end></event></schedule>\u2003",
        "<think>r</think><schedule><event><event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        "<schedule><event><name> </name><start>09:00</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A<</name><start>09:00</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>٠٩:٠٠</start><end>10:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>99:99</start><end>00:00</end></event></schedule>",
        "<schedule><event><name>A</name><start>09:00</start><end>10:00</end></event",
        "<think>r</think>x<schedule><event><name>😀</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
        "<think>r</think><schedule>x<event><name>A</name><start>09:00</start><end>10:00</end></event>"
        "</schedule>",
    ],
)
def test_edge_cases(text: str) -> None:
    same(text)


def test_many_events_and_every_time() -> None:
    """More events than the parser's first buffer holds, and every time string from 00:00 to 99:99."""
    times = [f"{h:02d}:{m:02d}" for h in range(100) for m in range(100)]
    body = "".join(
        f"<event><name>e{i}</name><start>{t}</start><end>{times[-1 - i]}</end></event>\n"
        for i, t in enumerate(times)
    )
    same(f"<think>all of them</think>\n<schedule>\n{body}</schedule>")


@needs_c
def test_the_extension_checks_its_argument() -> None:
    assert _strict is not None
    with pytest.raises(TypeError):
        _strict.parse_strict(b"<schedule>")  # type: ignore[arg-type]
