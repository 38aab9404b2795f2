"""The catalog's rules: what a valid name, description, priority and page request is."""

from __future__ import annotations

import re

from core.errors import ValidationError

NAME_MAX = 255
DESCRIPTION_MAX = 10_000
PRIORITY_MAX = 1_000_000_000
LIMIT_DEFAULT, LIMIT_MAX = 10, 1000
OFFSET_DEFAULT = 1


# A name is refused if it holds a NUL or a bidirectional override / isolate (which reorder the
# text shown around it), or if none of its characters is visible: only whitespace, controls,
# zero-width and other format characters, fillers, variation selectors or combining marks.
# Plain character classes, the same in Python and in ECMAScript (the OpenAPI ``pattern``).
NAME_FORBIDDEN = r"\x00\u202a-\u202e\u2066-\u2069"
NAME_INVISIBLE = (
    r"\x00-\x20\x7f-\xa0\xad\u0300-\u036f\u034f\u061c\u115f\u1160\u17b4\u17b5"
    r"\u180b-\u180f\u1680\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164"
    r"\ufe00-\ufe0f\ufeff\uffa0"
)
NAME_PATTERN = f"^[^{NAME_FORBIDDEN}]*[^{NAME_INVISIBLE}][^{NAME_FORBIDDEN}]*$"
"""What a valid name matches (before trimming), besides its length of 1..255."""
DESCRIPTION_PATTERN = r"^[^\x00]*$"
_FORBIDDEN = re.compile(f"[{NAME_FORBIDDEN}]")
_VISIBLE = re.compile(f"[^{NAME_INVISIBLE}]")


def clean_name(name: str, field: str = "name") -> str:
    """The name trimmed of surrounding whitespace; 1..255 characters after trimming, at least
    one of them visible, none of them NUL or a bidirectional control (``NAME_PATTERN``)."""
    trimmed = name.strip()
    forbidden = _FORBIDDEN.search(trimmed)
    if forbidden and forbidden.group() == "\x00":
        raise ValidationError(details={field: "must not contain NUL characters"})
    if not trimmed:
        raise ValidationError(details={field: "must not be empty"})
    if forbidden:
        raise ValidationError(details={field: "must not contain bidirectional controls"})
    if not _VISIBLE.search(trimmed):
        raise ValidationError(details={field: "must contain a visible character"})
    if len(trimmed) > NAME_MAX:
        raise ValidationError(details={field: f"must be at most {NAME_MAX} characters"})
    return trimmed


def clean_description(description: str) -> str:
    """At most 10,000 characters; no NUL characters (text storage cannot hold them)."""
    if "\x00" in description:
        raise ValidationError(details={"description": "must not contain NUL characters"})
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError(
            details={"description": f"must be at most {DESCRIPTION_MAX} characters"}
        )
    return description


def check_priority(priority: int) -> int:
    if not 1 <= priority <= PRIORITY_MAX:
        raise ValidationError(details={"newPriority": f"must be between 1 and {PRIORITY_MAX}"})
    return priority


def page_window(limit: int | None, offset: int | None) -> tuple[int, int]:
    """``(limit, offset)`` with defaults applied: limit 1..1000 (default 10), offset a 1-based
    position (default 1; 0 is read as 1)."""
    limit = LIMIT_DEFAULT if limit is None else limit
    offset = OFFSET_DEFAULT if offset is None else offset
    if not 1 <= limit <= LIMIT_MAX:
        raise ValidationError(details={"limit": f"must be between 1 and {LIMIT_MAX}"})
    if offset < 0:
        raise ValidationError(details={"offset": "must be 0 or more"})
    return limit, max(offset, 1)
