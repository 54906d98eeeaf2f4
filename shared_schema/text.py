"""Text hygiene shared by both sides: bounded echoes of client input, and text that JSON can always encode.

`clip` is how every error message quotes what a client sent: a short prefix and the full length, so an
8 MB field never comes back as a 40 MB error. `clean_text` replaces lone UTF-16 surrogates (valid in a
Python `str` and in JSON's `\\udc80` escapes, but not encodable as UTF-8) with U+FFFD, so free text such as
a completion can be scored and echoed like any other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator

CLIP_CHARS = 40


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """`repr(value)` when short; otherwise the repr of its first `limit` characters and its length.

    The result is always ASCII-safe for JSON (repr escapes surrogates and control characters)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}… ({len(text)} chars)"


def clip_message(message: str, limit: int = 500) -> str:
    """A message that may embed client input, cut to `limit` characters (with the length it had)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message)} chars)"


def has_surrogates(text: str) -> bool:
    """True when `text` holds a lone UTF-16 surrogate (cannot be encoded as UTF-8)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_text(value: object) -> object:
    """Lone surrogates → U+FFFD (a surrogate pair written as two escapes becomes its character);
    anything that is not a `str` passes through for the field's own validation to judge."""
    if isinstance(value, str) and has_surrogates(value):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


CleanText = Annotated[str, BeforeValidator(clean_text)]
"""A `str` field whose lone surrogates are replaced: free text (completions, OpenRLHF queries)."""
