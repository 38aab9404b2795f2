"""The Redis cache adapter: shared by every process pointed at the same Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError, ResponseError

from core.errors import CacheUnavailable

# KEYS[1]: the counter; ARGV: pairs of prefix and suffix around the generation, one pair per
# value wanted. Returns the generation, then the value of each pair under that generation.
# The values' keys are built on the server, so they are not declared in KEYS: fine on one Redis
# server; on a Redis Cluster the counter and the values would need one hash slot (a hash tag).
_GET_IN_GENERATION = """
local generation = redis.call('GET', KEYS[1])
if not generation then generation = '0' end
local reply = {generation}
for i = 1, #ARGV, 2 do
  reply[#reply + 1] = redis.call('GET', ARGV[i] .. generation .. ARGV[i + 1])
end
return reply
"""

_Waiters = dict[Any, list["asyncio.Future[Any]"]]


class _ReadBatch:
    """Reads issued in the same turn of the event loop leave together: every ``GET`` as one
    ``MGET`` of the distinct keys, every generation read of one counter as one ``EVALSHA``
    of the distinct pages (one pipeline if there are several such commands). Under load the
    per-command cost of the client (packing, send, parsing) and of the server is paid once per
    batch instead of once per request.

    The batches travel on one connection of their own, one batch at a time: the reads issued
    while a batch is on the wire leave together when it is back. A batch costs about 100 µs of
    the process's CPU (measured, ``bench/hot_path_cpu.py``: the socket write and read, and
    redis-py's client layer: pool checkout and release, retry and timeout wrappers), so under
    load fewer, larger batches are what makes a hit cheap; the connection is used through
    redis-py's own ``Connection`` (packing, hiredis parsing, the health check, reconnection
    after a failure), without the client layer.

    Each read is still sent after its caller issued it, so it sees everything done before the
    caller asked (an ``incr`` that returned before the call is never missed). A failed command
    fails the reads it carried and no others; a failed connection fails its batch, and the
    next batch connects again."""

    def __init__(self, client: Redis, script: str) -> None:
        self._client = client
        self._script = script
        self._sha = client.register_script(script).sha
        self._gets: _Waiters = {}
        self._generations: dict[str, _Waiters] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._flush_due = False
        self._connection: AbstractConnection | None = None

    def get(self, key: str) -> asyncio.Future[Any]:
        """The future raw value of ``key``."""
        return self._wait(self._gets, key)

    def get_in_generation(self, counter: str, prefix: str, suffix: str) -> asyncio.Future[Any]:
        """The future ``(raw generation, raw value)``."""
        return self._wait(self._generations.setdefault(counter, {}), (prefix, suffix))

    def _wait(self, waiters: _Waiters, what: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._flush_due:
            self._flush_due = True
            loop.call_soon(self._flush)
        waiters.setdefault(what, []).append(future)
        return future

    def _flush(self) -> None:
        self._flush_due = False
        if self._sending:  # the batch on the wire sends these when it is back
            return
        if not self._gets and not self._generations:
            return
        gets, self._gets = self._gets, {}
        generations, self._generations = self._generations, {}
        task = asyncio.ensure_future(self._send(gets, generations))
        self._sending.add(task)  # a reference until done: the loop keeps only weak ones
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._flush()  # the reads issued meanwhile, as the next batch

    async def _send(self, gets: _Waiters, generations: dict[str, _Waiters]) -> None:
        # (command, waiters, how to hand the reply out) for every command of the batch
        batch: list[tuple[tuple[Any, ...], _Waiters, bool]] = []
        if gets:
            batch.append((("MGET", *gets), gets, False))
        for counter, pages in generations.items():
            if pages:
                args = [part for pair in pages for part in pair]
                batch.append((("EVALSHA", self._sha, 1, counter, *args), pages, True))
        try:
            replies = await self._execute([command for command, _, _ in batch])
        except asyncio.CancelledError:
            for _, waiters, _ in batch:
                _settle(waiters, exc=asyncio.CancelledError())
            raise
        except Exception as exc:  # the connection failed: every read of the batch fails
            for _, waiters, _ in batch:
                _settle(waiters, exc=exc)
            return
        for (_, waiters, generational), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                _settle(waiters, exc=reply)
            elif generational:
                generation, values = reply[0], reply[1:]
                for futures, value in zip(waiters.values(), values, strict=True):
                    _resolve(futures, (generation, value))
            else:
                for futures, value in zip(waiters.values(), reply, strict=True):
                    _resolve(futures, value)

    async def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        replies = await self._pipeline(commands)
        if any(isinstance(reply, NoScriptError) for reply in replies):
            # first use, or the server restarted and forgot the script
            await self._client.script_load(self._script)
            again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            retried = await self._pipeline([commands[i] for i in again])
            for i, reply in zip(again, retried, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        connection = self._connection
        if connection is None:  # out of the pool for good; the client's close closes it
            connection = self._connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:  # an error reply: that command's, not the batch's
                    replies.append(exc)
        except BaseException:
            # mid-reply (an error, a timeout, a cancellation): the connection is out of step
            await connection.disconnect(nowait=True)
            raise
        return replies


def _resolve(futures: list[asyncio.Future[Any]], value: Any) -> None:
    for future in futures:
        if not future.done():  # else its caller was cancelled
            future.set_result(value)


def _settle(waiters: _Waiters, *, exc: BaseException) -> None:
    for futures in waiters.values():
        for future in futures:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)


class RedisCache:
    """Implements ``core.ports.cache.Cache`` over a ``redis.asyncio.Redis`` client (bytes
    responses). Every key is stored under ``prefix``. Any Redis or connection error becomes
    ``CacheUnavailable``; an ``incr`` of a non-integer value too.

    The reads (``get``, ``get_in_generation``) of one event-loop turn are batched
    (``_ReadBatch``): one ``MGET``, and one ``EVALSHA`` of a Lua script per counter (the
    script is loaded on first use and again after a server restart, ``NOSCRIPT``), sent on a
    connection of the reads' own, one batch at a time."""

    def __init__(self, *, client: Redis, prefix: str = "hexmarket:") -> None:
        self._client = client
        self._prefix = prefix
        self._reads = _ReadBatch(client, _GET_IN_GENERATION)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._reads.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis get failed: {exc}") from exc
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, round(ttl * 1000))
        try:
            await self._client.set(self._prefix + key, value, px=px)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis set failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis delete failed: {exc}") from exc

    async def incr(self, key: str) -> int:
        full = self._prefix + key
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                pipe.persist(full)
                value, _ = await pipe.execute()
        except ResponseError as exc:
            raise CacheUnavailable(f"redis incr of {key!r} failed: {exc}") from exc
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis incr failed: {exc}") from exc
        return int(value)

    async def get_in_generation(
        self, counter: str, prefix: str, suffix: str = ""
    ) -> tuple[int, bytes | None]:
        read = self._reads.get_in_generation(self._prefix + counter, self._prefix + prefix, suffix)
        try:
            raw, value = await read
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis generation read failed: {exc}") from exc
        try:
            generation = int(raw)
        except ValueError as exc:
            raise CacheUnavailable(f"counter {counter!r} is not an integer") from exc
        return generation, value

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis ping failed: {exc}") from exc


async def probe(url: str, within: float) -> None:
    """Return if the Redis server at ``url`` answers ``RedisCache.ping`` within about
    ``within`` seconds, on a client of its own (closed after), else raise ``CacheUnavailable``."""
    client: Redis = Redis.from_url(url, socket_connect_timeout=within, socket_timeout=within)
    try:
        await RedisCache(client=client, prefix="").ping()
    finally:
        await client.aclose()
