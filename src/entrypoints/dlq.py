"""``hexmarket dlq``: read and replay dead letters (``core.orders.dlq``).

The dead letters live on the broker's dead-letter topic (Kafka topic / JetStream stream of
``HEXMARKET_ORDERS_DLQ_TOPIC``) and, for the few the broker refused even bounded, in the
PostgreSQL table ``dead_letters``; ``--from`` picks either or both (default both when the
orders store is PostgreSQL). Reading never disturbs a consumer: see the archive adapters.

Every text that came from a message (keys, errors, payloads) is printed with control characters
escaped, so a payload cannot drive the terminal.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import click

from core.errors import BrokerUnavailable
from core.orders.dlq import DeadLetter, DeadLetterQueue, ReplayReport, Selection
from core.ports.dead_letters import DeadLetterArchive
from entrypoints import runtime
from entrypoints.container import Container, resolve
from entrypoints.launch import fail, load_settings, run_async
from entrypoints.settings import Settings

Origin = Literal["broker", "pg", "all"]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 timestamp (without a zone: UTC), or a duration back from now: ``90s``,
    ``15m``, ``2h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = float(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a timestamp (2025-01-02T03:04:05Z) nor a duration (15m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Moment(click.ParamType):  # type: ignore[type-arg]
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value if isinstance(value, datetime) else parse_moment(str(value))


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\u200b``...)."""
    out = []
    for ch in text:
        if ch.isprintable() or (keep_newlines and ch in "\n\t"):
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ch != "\\" else ch)
    return "".join(out)


def safe_bytes(data: bytes) -> str:
    """Bytes that are not UTF-8, shown as printable ASCII (and line breaks, tabs) with every
    other byte as ``\\xNN`` and the backslash doubled."""
    return "".join(
        chr(b)
        if (0x20 <= b < 0x7F and b != 0x5C) or b in (0x09, 0x0A)
        else ("\\\\" if b == 0x5C else f"\\x{b:02x}")
        for b in data
    )


def _uses_postgres(settings: Settings, origin: Origin) -> bool:
    return origin in ("pg", "all") and settings.orders_store == "postgres"


async def _with_queue(
    settings: Settings, origin: Origin, call: Any, *, replay: bool = False
) -> Any:
    """Check the servers, build the queue, run ``call(queue)``, close everything."""
    if origin == "pg" and settings.orders_store != "postgres":
        raise click.UsageError("--from pg needs HEXMARKET_ORDERS_STORE=postgres")
    if settings.orders_broker == "memory" and (origin != "pg" or replay):
        raise click.UsageError(
            "HEXMARKET_ORDERS_BROKER=memory exists only inside one process; use nats or kafka"
        )
    pg = _uses_postgres(settings, origin)
    await runtime.check_servers(settings, ["consume-orders" if pg else "produce-orders"])
    container = Container(settings=settings)
    try:
        archives: list[DeadLetterArchive] = []
        if origin in ("broker", "all") and settings.orders_broker != "memory":
            archives.append(await resolve(container.broker_dead_letters()))
        if pg:
            archives.append(await resolve(container.pg_dead_letters()))
        publisher = await resolve(container.orders_bus()) if replay else None
        queue = DeadLetterQueue(archives, publisher=publisher, orders_topic=settings.orders_topic)
        return await call(queue)
    finally:
        await runtime.close_container(container)  # the archives and the publisher: its own


def _first_error(letter: DeadLetter) -> str:
    if not letter.errors:
        return ""
    error = letter.errors[0]
    field = str(error.get("field", ""))
    text = f"{field}: {error.get('error', '')}" if field else str(error.get("error", ""))
    more = f" (+{len(letter.errors) - 1})" if len(letter.errors) > 1 else ""
    return text + more


def _source(letter: DeadLetter) -> str:
    source = letter.source
    if "partition" in source:
        return f"{source.get('topic')}/{source.get('partition')}/{source.get('offset')}"
    if "seq" in source:
        return f"{source.get('stream')}/{source.get('seq')}"
    return "-"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def _as_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "reason": letter.reason,
        "received_at": _iso(letter.received_at),
        "stored_at": _iso(letter.stored_at),
        "source": dict(letter.source),
        "key": letter.key,
        "errors": [dict(e) for e in letter.errors],
        "payload_bytes": None if letter.payload is None else len(letter.payload),
        "replayable": letter.payload is not None and letter.complete,
    }


# --- the commands --------------------------------------------------------------------------------

_FROM = click.option(
    "--from",
    "origin",
    type=click.Choice(["broker", "pg", "all"]),
    default="all",
    show_default=True,
    help="Where to read: the dead-letter topic, the PostgreSQL dead_letters table, or both.",
)


def _filters(command: Callable[..., None]) -> Callable[..., None]:
    """The options that select dead letters (``--reason``, ``--id``, ``--since``, ``--until``)
    and ``--from``: ``command`` receives the first four as one ``selection``."""

    @functools.wraps(command)
    def with_selection(
        reasons: tuple[str, ...],
        ids: tuple[str, ...],
        since: datetime | None,
        until: datetime | None,
        **options: Any,
    ) -> None:
        selection = Selection(
            reasons=frozenset(reasons), ids=frozenset(ids), since=since, until=until
        )
        command(selection=selection, **options)

    for option in reversed(
        [
            click.option(
                "--reason", "reasons", multiple=True, help="Only this reason (repeatable)."
            ),
            click.option("--id", "ids", multiple=True, help="Only this dead letter (repeatable)."),
            click.option(
                "--since", type=_Moment(), default=None, help="Received at or after: ISO or 2h."
            ),
            click.option(
                "--until", type=_Moment(), default=None, help="Received before: ISO or 30m."
            ),
            _FROM,
        ]
    ):
        with_selection = option(with_selection)
    return with_selection


@click.group("dlq")
def dlq() -> None:
    """Read and replay dead letters (the dead-letter topic and the PostgreSQL table).

    Ids are <where>:<ref>: kafka:<partition>/<offset>, nats:<stream seq>, pg:<key>.
    """


@dlq.command("list")
@_filters
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, no summary.")
def list_command(selection: Selection, origin: Origin, limit: int, as_json: bool) -> None:
    """List dead letters (oldest first) and count them per reason."""
    settings = load_settings()

    async def call(queue: DeadLetterQueue) -> Any:
        return await queue.list(selection, limit=limit)

    listing = run_async(_with_queue(settings, origin, call))
    if as_json:
        for letter in listing.letters:
            click.echo(json.dumps(_as_json(letter), ensure_ascii=False))
        return
    if listing.letters:
        rows = [("ID", "RECEIVED AT", "REASON", "SOURCE", "KEY", "FIRST ERROR")]
        for letter in listing.letters:
            key = safe(letter.key or "-")
            rows.append(
                (
                    safe(letter.id),
                    _iso(letter.when),
                    safe(letter.reason) + ("" if letter.complete else " (truncated)"),
                    safe(_source(letter)),
                    key if len(key) <= 24 else key[:23] + "…",
                    safe(_first_error(letter))[:80],
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            click.echo("  ".join([*cells, row[-1]]).rstrip())
        click.echo()
    counts = ", ".join(f"{safe(r)} {n}" for r, n in listing.by_reason.items()) or "none"
    shown = f" (showing {len(listing.letters)})" if len(listing.letters) < listing.total else ""
    click.echo(f"{listing.total} dead letter(s){shown}; by reason: {counts}")


@dlq.command("show")
@click.argument("ident", metavar="ID")
@click.option(
    "--raw",
    is_flag=True,
    help="Write only the payload's exact bytes to stdout (redirect it to a file).",
)
@_FROM
def show_command(ident: str, raw: bool, origin: Origin) -> None:
    """Show one dead letter: its envelope, and its payload decoded."""
    settings = load_settings()
    if raw and sys.stdout.isatty():
        fail("--raw writes the payload's bytes as they are: redirect stdout to a file")

    async def call(queue: DeadLetterQueue) -> Any:
        return await queue.show(ident)

    letter: DeadLetter | None = run_async(_with_queue(settings, origin, call))
    if letter is None:
        fail(f"no dead letter {safe(ident)} (ids look like kafka:2/1041, nats:17, pg:<key>)")
    if raw:
        if letter.payload is None:
            fail(f"{safe(ident)} holds no readable payload")
        sys.stdout.buffer.write(letter.payload)
        sys.stdout.buffer.flush()
        return
    click.echo(f"id:           {safe(letter.id)}")
    click.echo(f"reason:       {safe(letter.reason)}")
    click.echo(f"received at:  {_iso(letter.received_at)}")
    click.echo(f"stored at:    {_iso(letter.stored_at)}")
    click.echo(f"source:       {safe(json.dumps(dict(letter.source), ensure_ascii=False))}")
    click.echo(f"key:          {safe(letter.key) if letter.key is not None else '-'}")
    click.echo(f"errors:       {len(letter.errors)}")
    for error in letter.errors:
        field = str(error.get("field", "")) or "(message)"
        click.echo(f"  - {safe(field)}: {safe(str(error.get('error', '')))}")
    if letter.envelope.get("errors_omitted"):
        click.echo(f"  ... {letter.envelope['errors_omitted']} more omitted (bounded envelope)")
    payload = letter.payload
    if payload is None:
        click.echo("payload:      unreadable (not a dead-letter envelope)")
        return
    if letter.complete:
        state = "complete, replayable"
    else:
        state = (
            f"TRUNCATED: {len(payload)} of {letter.envelope.get('payload_size')} bytes kept,"
            f" sha256 of the original {letter.envelope.get('payload_sha256')}; cannot be replayed"
        )
    click.echo(f"payload:      {letter.payload_encoding}, {len(payload)} bytes ({state})")
    click.echo("-" * 72)
    if letter.payload_encoding == "utf-8":
        click.echo(safe(payload.decode("utf-8"), keep_newlines=True))
    else:
        click.echo(safe_bytes(payload))


@dlq.command("replay")
@_filters
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@click.option("--dry-run", is_flag=True, help="Only say what would be replayed.")
def replay_command(selection: Selection, origin: Origin, everything: bool, dry_run: bool) -> None:
    """Publish the selected dead letters' original payloads to the orders topic again.

    Safe to run twice: ingest is idempotent by order_uid. Dead letters whose payload was
    truncated (bounded envelope) cannot be replayed: they are skipped and counted. Nothing is
    removed from the dead-letter topic or table.
    """
    settings = load_settings()
    if selection.everything and not everything:
        fail("say which dead letters to replay (--reason, --id, --since, --until) or --all")

    async def call(queue: DeadLetterQueue) -> ReplayReport:
        # deferred: rich loads only for the progress bar of a replay
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=dry_run, transient=False) as bar:
            task = bar.add_task(f"replay -> {settings.orders_topic}", total=None)
            return await queue.replay(
                selection,
                dry_run=dry_run,
                on_selected=lambda n: bar.update(task, total=n),
                progress=lambda n: bar.advance(task, n),
            )

    try:
        report: ReplayReport = run_async(_with_queue(settings, origin, call, replay=True))
    except BrokerUnavailable as exc:
        fail(f"{exc} (what was published stays published; running again is safe)")
    verb = "would replay" if report.dry_run else "replayed"
    click.echo(
        f"{verb} {len(report.replayed)} of {report.selected} selected dead letter(s)"
        f" to {settings.orders_topic}"
    )
    if report.dry_run:
        for ident in report.replayed:
            click.echo(f"  {safe(ident)}")
    if report.truncated:
        click.echo(
            f"skipped {len(report.truncated)} truncated (payload cut in a bounded envelope,"
            " the original is not kept; its size and sha256 are in `dlq show`):"
        )
        for ident in report.truncated:
            click.echo(f"  {safe(ident)}")
    if report.unreadable:
        click.echo(f"skipped {len(report.unreadable)} unreadable (not a dead-letter envelope)")
    if report.refused:
        click.echo(f"refused by the broker: {len(report.refused)}")
        for ident, why in report.refused.items():
            click.echo(f"  {safe(ident)}: {safe(why)}")
