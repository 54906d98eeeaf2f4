"""Error bodies of the service: `detail` is a string, or for a 422 a list of `{loc, msg, type}`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    """A 400, 401, 404 or 413: what went wrong, in a bounded message."""

    detail: str = Field(description="What went wrong (client input is quoted as a short prefix and length).")


class ValidationErrorItem(BaseModel):
    """One validation error: where and what; never the offending input itself."""

    loc: list[str | int] = Field(description='Path to the field, e.g. `["body", "items", 0, "completion"]`.')
    msg: str = Field(description="What is wrong, in a bounded message.")
    type: str = Field(description="Error type, e.g. `missing`, `string_pattern_mismatch`, `value_error`.")


class ValidationErrorResponse(BaseModel):
    """A 422: every error found (up to 20, then a `truncated` entry)."""

    detail: list[ValidationErrorItem] = Field(description="The errors.")
