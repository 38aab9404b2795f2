"""A hexmarket worker (the real ``run_*`` function of ``entrypoints.workers``) in a child
process, gated so the benchmark times only the work:

1. build the container from ``HEXMARKET_*`` settings, print ``ready``;
2. wait for ``go`` on stdin, then start the worker(s);
3. with ``--expect N --count orders|clickhouse``: poll the count every ``--poll`` seconds and
   print ``done <seconds since go>`` when it reaches N;
4. stop on ``stop`` (stdin), SIGTERM or end of stdin: the workers finish their batch and close.

``python -m bench.worker consume-orders --expect 100000 --count orders``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from entrypoints.container import Container
from entrypoints.settings import Settings


async def _count_orders(settings: Settings) -> Callable[[], Awaitable[int]]:
    import psycopg

    assert settings.postgres_url is not None
    conn = await psycopg.AsyncConnection.connect(settings.postgres_url, autocommit=True)

    async def count() -> int:
        cur = await conn.execute("SELECT count(*) FROM orders")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    return count


async def _count_clickhouse(settings: Settings, table: str) -> Callable[[], Awaitable[int]]:
    import clickhouse_connect

    assert settings.clickhouse_url is not None
    dsn = settings.clickhouse_url

    seen_table: list[Any] = []  # the first client that saw the table, reused from then on

    def count_now() -> int:
        # A chDB session opened before the log writer created its table keeps not seeing it,
        # so fresh clients are tried until one sees the table; that one is kept, because
        # opening a client per poll costs the measured process ~18 ms each time.
        if seen_table:
            return int(seen_table[0].command(f"SELECT count() FROM {table}"))
        client = clickhouse_connect.get_client(dsn=dsn)
        try:
            result: Any = client.command(f"SELECT count() FROM {table}")
        except Exception as exc:
            client.close()
            if "UNKNOWN_TABLE" in str(exc) or "UNKNOWN_DATABASE" in str(exc):
                return 0
            raise
        seen_table.append(client)
        return int(result)

    async def count() -> int:
        return await asyncio.to_thread(count_now)

    return count


async def _read_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


async def main(args: argparse.Namespace) -> int:
    from entrypoints import runtime
    from entrypoints.logging import configure
    from entrypoints.roles import WORKERS

    settings = Settings()
    configure(settings.log_level, json_lines=settings.log_json)
    container = Container(settings=settings)
    counter: Callable[[], Awaitable[int]] | None = None
    if args.count == "orders":
        counter = await _count_orders(settings)
    elif args.count:
        counter = await _count_clickhouse(settings, args.count)
    print("ready", flush=True)
    if await _read_line() != "go":
        return 2
    began = time.perf_counter()
    stop = asyncio.Event()
    # Bound as ``hexmarket <role>`` binds them (metrics wired first).
    tasks = {role: runtime.bind_worker(role, WORKERS[role], container) for role in args.roles}
    runner = asyncio.create_task(runtime.run_tasks(tasks, stop))

    async def until_stop_line() -> None:
        while (await _read_line()) not in ("stop", ""):
            pass
        stop.set()

    stopper = asyncio.create_task(until_stop_line())
    with runtime.stop_on_signals(stop):
        if counter is not None:
            while not runner.done():
                seen = await counter()
                if seen >= args.expect:
                    print(f"done {time.perf_counter() - began:.6f} {seen}", flush=True)
                    break
                await asyncio.sleep(args.poll)
        code = await runner
    stopper.cancel()
    await runtime.close_container(container)
    return code


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument(
        "roles", nargs="+", choices=["consume-orders", "relay-outbox", "write-logs"]
    )
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--count", default="", help="'orders' or a ClickHouse table")
    parser.add_argument("--poll", type=float, default=0.05)
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
