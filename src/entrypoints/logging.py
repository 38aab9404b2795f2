"""Structured logging: one line per event, ``key=value`` text or one JSON object per line.

Fields passed through ``extra={...}`` become keys of the event. Every process calls
:func:`configure` once at start; uvicorn's loggers are routed through the same handler.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _event(record: logging.LogRecord) -> dict[str, Any]:
    event: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    event.update(_extras(record))
    if record.exc_info and record.exc_info[0] is not None:
        event["exc_type"] = record.exc_info[0].__name__
        event["exc"] = logging.Formatter().formatException(record.exc_info)
    return event


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record), default=str, ensure_ascii=False)


def _quote(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``ts level logger: event key=value ...`` on one line (tracebacks escaped into it)."""

    def format(self, record: logging.LogRecord) -> str:
        event = _event(record)
        head = f"{event.pop('ts')} {event.pop('level'):<7} {event.pop('logger')}: "
        head += str(event.pop("event")).replace("\n", "\\n")
        tail = " ".join(f"{k}={_quote(v)}" for k, v in event.items())
        return f"{head} {tail}" if tail else head


def configure(
    level: str = "INFO", *, json_lines: bool = False, stream: TextIO | None = None
) -> None:
    """Install one handler on the root logger (idempotent: replaces earlier handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # one line per request is the access log's job; keep it at WARNING unless debugging
    logging.getLogger("uvicorn.access").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    for noisy in ("aiokafka", "kafka", "nats", "httpx", "httpcore", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
