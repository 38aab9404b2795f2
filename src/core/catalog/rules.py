"""The catalog's rules: what a valid name, description, priority and page request is."""

from __future__ import annotations

import unicodedata

from core.errors import ValidationError

NAME_MAX = 255
DESCRIPTION_MAX = 10_000
PRIORITY_MAX = 1_000_000_000
LIMIT_DEFAULT, LIMIT_MAX = 10, 1000
OFFSET_DEFAULT = 1


_BIDI_CONTROLS = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})


def clean_name(name: str, field: str = "name") -> str:
    """The name trimmed of surrounding whitespace; 1..255 characters after trimming, at least
    one of them visible (a letter, digit, punctuation or symbol: not only zero-width or
    combining characters), and no bidirectional override or isolate (which reorder the text
    shown around the name)."""
    trimmed = name.strip()
    if "\x00" in trimmed:
        raise ValidationError(details={field: "must not contain NUL characters"})
    if not trimmed:
        raise ValidationError(details={field: "must not be empty"})
    if any(unicodedata.bidirectional(c) in _BIDI_CONTROLS for c in trimmed):
        raise ValidationError(details={field: "must not contain bidirectional controls"})
    if not any(unicodedata.category(c)[0] in "LNPS" for c in trimmed):
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
