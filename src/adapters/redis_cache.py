"""The Redis cache adapter: shared by every process pointed at the same Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from core.errors import CacheUnavailable

# KEYS[1]: the counter; ARGV: the key's prefix and suffix around the generation. The value's
# key is built on the server, so it is not declared in KEYS: fine on one Redis server; on a
# Redis Cluster the counter and the values would need one hash slot (a ``{hash tag}``).
_GET_IN_GENERATION = """
local generation = redis.call('GET', KEYS[1])
if not generation then generation = '0' end
return {generation, redis.call('GET', ARGV[1] .. generation .. ARGV[2])}
"""


class _AutoPipeline:
    """Commands issued in the same turn of the event loop leave together, as one pipeline
    (one write, one read of all the replies) instead of one round trip each: under load the
    per-command cost of the client (connection checkout, send, timeout, read) is paid once
    per batch. Each command is still sent after its caller issued it, so it sees everything
    that was done before the caller asked. A failure of the pipeline fails every command of
    the batch; a command's own error reply fails only that command."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, *command: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((command, future))
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)  # a reference until done: the loop keeps only weak ones
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # handed to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


class RedisCache:
    """Implements ``core.ports.cache.Cache`` over a ``redis.asyncio.Redis`` client (bytes
    responses). Every key is stored under ``prefix``. Any Redis or connection error becomes
    ``CacheUnavailable``; an ``incr`` of a non-integer value too.

    The reads (``get``, ``get_in_generation``) are auto-pipelined (``_AutoPipeline``);
    ``get_in_generation`` is one ``EVALSHA`` of a Lua script, loaded on first use and again
    after a server restart (``NOSCRIPT``)."""

    def __init__(self, *, client: Redis, prefix: str = "hexmarket:") -> None:
        self._client = client
        self._prefix = prefix
        self._reads = _AutoPipeline(client)
        self._script = client.register_script(_GET_IN_GENERATION)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._reads.execute("GET", self._prefix + key)
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
        keys_and_args = (self._prefix + counter, self._prefix + prefix, suffix)
        command = ("EVALSHA", self._script.sha, 1, *keys_and_args)
        try:
            try:
                raw, value = await self._reads.execute(*command)
            except NoScriptError:  # first use, or the server restarted and forgot it
                await self._client.script_load(_GET_IN_GENERATION)
                raw, value = await self._reads.execute(*command)
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
