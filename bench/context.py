"""What every figure gets: the servers, the sizes of this run, fresh databases, child envs."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import attrs
import psycopg
from psycopg import sql

from bench.stats import Stat

if TYPE_CHECKING:
    from entrypoints.devstack import DevStack

T = TypeVar("T")


class NotAvailable(Exception):
    """A piece the figure measures has not been built (yet): reported, never faked."""


@attrs.frozen(kw_only=True)
class Sizes:
    """How big and how long; ``FULL`` is ``make bench``, ``SMOKE`` is ``make bench-smoke``."""

    runs: int
    http_warmup_s: float
    http_run_s: float
    http_paths: int
    ingest_orders: int
    memory_orders: int
    create_direct_tx: int
    audit_events: int
    copy_batch: int = 1000
    mixed_goods: int = 1000  # goods of the mixed writes (a third edited, the rest removable)
    reprioritize_goods: int = 100_000  # the table one reprioritize to 1 shifts whole


FULL = Sizes(
    runs=3,
    http_warmup_s=3,
    http_run_s=8,
    http_paths=10_000,
    ingest_orders=100_000,
    memory_orders=100_000,
    create_direct_tx=4_000,
    audit_events=50_000,
)
SMOKE = Sizes(
    runs=1,
    http_warmup_s=1,
    http_run_s=1,
    http_paths=50,
    ingest_orders=500,
    memory_orders=300,
    create_direct_tx=100,
    audit_events=300,
    copy_batch=100,
    mixed_goods=150,
    reprioritize_goods=500,
)


@attrs.define(kw_only=True)
class Bench:
    stack: DevStack
    sizes: Sizes
    workdir: Path
    smoke: bool
    versions: dict[str, str] = attrs.field(factory=dict)
    _counter: itertools.count[int] = attrs.field(factory=itertools.count)

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def token(self, prefix: str) -> str:
        """A name unique within this run (databases, topics, streams, groups)."""
        return f"{prefix}{next(self._counter)}"

    def fresh_database(self, prefix: str, *, migrated: bool = True) -> str:
        """A new empty database (migrated unless told otherwise); returns its DSN."""
        admin = self.stack.postgres_url()
        name = self.token(f"bench_{prefix}_")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = admin.rsplit("/", 1)[0] + f"/{name}"
        if migrated:
            from adapters.postgres.migrate import migrate

            asyncio.run(migrate(dsn))
        return dsn

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment for a hexmarket child process pointing at this run's servers."""
        # chDB allows one engine path per process: each child gets its own, unless told.
        chdb = self.workdir / "chdb" / self.token("p")
        chdb.mkdir(parents=True, exist_ok=True)
        env = {
            "HEXMARKET_CLICKHOUSE_URL": f"chdb://{chdb}",
            "HEXMARKET_REDIS_URL": self.stack.redis_url(),
            "HEXMARKET_NATS_URL": self.stack.nats_url(),
            "HEXMARKET_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        }
        env.update(overrides)
        return env

    def alternate(
        self,
        hexmarket: Callable[[], float],
        ceiling: Callable[[], float] | None,
        *,
        warm_hexmarket: Callable[[], object] | None = None,
        warm_ceiling: Callable[[], object] | None = None,
    ) -> tuple[Stat, Stat | None]:
        """Warm both up once, then alternate their runs (drift on a shared machine hits both).

        The warm-up defaults to one unrecorded run of the same measurement.
        """
        (warm_hexmarket or hexmarket)()
        if ceiling is not None:
            (warm_ceiling or ceiling)()
        hex_values: list[float] = []
        ceiling_values: list[float] = []
        for _ in range(self.sizes.runs):
            hex_values.append(hexmarket())
            if ceiling is not None:
                ceiling_values.append(ceiling())
        return Stat.of(hex_values), (Stat.of(ceiling_values) if ceiling_values else None)
