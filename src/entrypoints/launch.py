"""How every command starts: ``Settings`` from the environment (invalid ones end the command
with one line), logging configured, the servers of a running ``hexmarket dev`` used for every URL
left unset, and the event loop run so that configuration and reachability errors are one line
and exit code 1 (e.g. ``error: cannot reach PostgreSQL at postgresql://app:***@db:5432/app:
connection refused``).

A command started while ``hexmarket dev`` runs on the same data directory (``HEXMARKET_DATA_DIR``,
default ``.hexmarket``) uses that stack's servers for every URL left unset, so the README's
steps work in a second terminal as written; what is set in the environment always wins.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
import pydantic

from entrypoints import probes, tracing
from entrypoints.devstack import running_stack
from entrypoints.logging import configure
from entrypoints.settings import Settings
from entrypoints.settings_doc import env_names

T = TypeVar("T")

log = logging.getLogger("hexmarket")


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def describe_validation_error(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = Settings.model_fields.get(field)
        name = env_names(field, info)[0] if info is not None else field
        parts.append(f"{name}: {error['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings(*, discover: bool = True, **overrides: Any) -> Settings:
    """Settings from the environment and ``.env``; invalid ones end the command. With
    ``discover``, server URLs left unset come from a running ``hexmarket dev`` (see above)."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except pydantic.ValidationError as exc:
        fail(describe_validation_error(exc))
    configure(settings.log_level, json_lines=settings.log_json)
    command = click.get_current_context(silent=True)
    tracing.configure(settings, process=command.info_name if command else None)
    if discover:
        settings = with_dev_stack(settings)
    return settings


def with_dev_stack(settings: Settings) -> Settings:
    """``settings`` with each unset server URL taken from the ``hexmarket dev`` running on
    ``settings.data_dir``, if one runs; unchanged otherwise."""
    urls = running_stack(settings.data_dir)
    if not urls:
        return settings
    update = {
        name: url
        for name, url in urls.items()
        if name in Settings.model_fields and getattr(settings, name) is None
    }
    if update:
        log.info(
            "using the servers of the running hexmarket dev",
            extra={"data_dir": str(settings.data_dir), "servers": sorted(update)},
        )
    return settings.model_copy(update=update)


def base_url(settings: Settings, port: int) -> str:
    """The HTTP API's URL as a person on this machine opens it."""
    host = settings.http_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - only displayed
    return f"http://{shown}:{port}"


def web_url(settings: Settings) -> str:
    """The HTTP API's base URL: the running ``hexmarket dev``'s, else the configured one."""
    recorded = (running_stack(settings.data_dir) or {}).get("http_url")
    return recorded or base_url(settings, settings.http_port)


def run_async(
    main: Coroutine[Any, Any, T],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``main`` (on a loop from ``loop_factory``, else the standard one); configuration
    and reachability errors become one line and exit 1."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)
    except (probes.ConfigurationError, probes.UnreachableError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # interrupted before the signal handlers were in place
        sys.exit(130)
