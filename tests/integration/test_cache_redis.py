"""The Redis cache beyond the contract (``tests/contracts.py`` runs that on a real server): it
agrees with the in-process LRU under random operations, keeps auto-pipelined reads apart, and
reports outages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from redis.asyncio import Redis

from adapters.lru_cache import LruCache
from adapters.redis_cache import RedisCache
from core.errors import CacheUnavailable
from core.ports.cache import Cache
from tests.support import eventually


@pytest.fixture
async def cache(redis_url: str, unique: str) -> AsyncIterator[RedisCache]:
    client: Redis = Redis.from_url(redis_url)
    yield RedisCache(client=client, prefix=f"{unique}:")
    await client.aclose()


async def test_counters_survive_a_set_with_ttl_before(cache: RedisCache) -> None:
    await cache.set("gen", b"5", 0.5)
    assert await cache.incr("gen") == 6
    assert await cache.get("gen") == b"6"


async def test_an_unreachable_server_is_cache_unavailable(stack: Any, redis_url: str) -> None:
    client: Redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    cache = RedisCache(client=client, prefix="down:")
    try:
        stack.stop("redis")
        calls = (cache.get("k"), cache.set("k", b"v", 1), cache.incr("k"), cache.ping())
        for call in (*calls, cache.get_in_generation("gen", "page:")):
            with pytest.raises(CacheUnavailable):
                await call
    finally:
        stack.start("redis")
        await client.aclose()


async def test_concurrent_reads_each_get_their_own_reply(cache: RedisCache) -> None:
    # Reads issued together leave as one pipeline: every caller must still get its own value.
    for i in range(100):
        await cache.set(f"k{i}", f"v{i}".encode(), 60)
    await cache.incr("gen")
    await cache.set("page:1:x", b"page", 60)
    reads = [cache.get(f"k{i % 100}") for i in range(300)] + [cache.get("absent")]
    reads += [cache.get_in_generation("gen", "page:", s) for s in (":x", ":y", ":x")]
    results = await asyncio.gather(*reads)
    expected = [f"v{i % 100}".encode() for i in range(300)] + [None]
    assert results == [*expected, (1, b"page"), (1, None), (1, b"page")]


async def test_an_error_reply_fails_only_its_own_read(cache: RedisCache) -> None:
    await cache.set("good", b"v", 60)
    await cache.set("gen", b"not a number", 60)
    results = await asyncio.gather(
        cache.get("good"),
        cache.get_in_generation("gen", "page:"),
        cache.get("good"),
        return_exceptions=True,
    )
    assert results[0] == results[2] == b"v"
    assert isinstance(results[1], CacheUnavailable)


async def test_a_server_that_forgot_the_script_loads_it_again(
    cache: RedisCache, redis_url: str
) -> None:
    await cache.incr("gen")
    await cache.set("page:1", b"one", 60)
    assert await cache.get_in_generation("gen", "page:") == (1, b"one")
    admin: Redis = Redis.from_url(redis_url)
    try:
        await admin.script_flush()  # what a restart does
    finally:
        await admin.aclose()
    results = await asyncio.gather(*(cache.get_in_generation("gen", "page:") for _ in range(5)))
    assert results == [(1, b"one")] * 5


async def test_reads_issued_while_a_batch_is_out_leave_together_when_it_is_back(
    cache: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        await cache.set(f"k{i}", f"v{i}".encode(), 60)
    batches: list[list[tuple[Any, ...]]] = []
    out, release = asyncio.Event(), asyncio.Event()
    reads = cache._reads
    pipeline = reads._pipeline

    async def held(commands: list[tuple[Any, ...]]) -> list[Any]:
        batches.append(commands)
        out.set()
        await release.wait()
        return await pipeline(commands)

    monkeypatch.setattr(reads, "_pipeline", held)
    first = asyncio.ensure_future(asyncio.gather(cache.get("k0"), cache.get("k1")))
    await asyncio.wait_for(out.wait(), 5)
    later = []
    for i in range(2, 6):  # each in a turn of its own: separate batches, were none out
        later.append(asyncio.ensure_future(cache.get(f"k{i}")))
        await asyncio.sleep(0)
    assert len(batches) == 1
    release.set()
    assert list(await first) == [b"v0", b"v1"]
    assert await asyncio.gather(*later) == [b"v2", b"v3", b"v4", b"v5"]
    assert len(batches) == 2
    assert batches[1] == [("MGET", *(f"{cache._prefix}k{i}" for i in range(2, 6)))]


async def test_a_lost_connection_fails_its_batch_and_the_next_one_reconnects(
    cache: RedisCache, redis_url: str
) -> None:
    await cache.set("k", b"v", 60)
    assert await cache.get("k") == b"v"  # the batches' connection is open
    admin: Redis = Redis.from_url(redis_url)
    try:
        await admin.client_kill_filter(_type="normal", skipme=True)
    finally:
        await admin.aclose()

    # the first read may meet the closed socket; a later batch connects again
    async def read_again() -> bool:
        try:
            got = await cache.get("k")
        except CacheUnavailable:
            return False
        assert got == b"v"
        return True

    await eventually(read_again, within=5, what="a read after the kill", interval=0.05)


_KEYS = st.sampled_from(["a", "gen", "p:0", "p:1", "p:2", "p:2:x"])
_VALUES = st.sampled_from([b"", b"0", b"1", b"7", b"x", b"\xff\x00", b"-"])


class CacheAgreement(RuleBasedStateMachine):
    """The same operations on Redis and on the in-process LRU: the same observable results
    (a value, or ``CacheUnavailable``), reads issued together included."""

    url = ""
    namespace = ""
    runs = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.client: Redis = Redis.from_url(self.url)
        prefix = f"{self.namespace}:{next(self.runs)}:"
        self.redis = RedisCache(client=self.client, prefix=prefix)
        self.lru = LruCache()

    def both(self, call: Callable[[Cache], Awaitable[Any]]) -> Any:
        outcomes = [self.loop.run_until_complete(_outcome(call(c))) for c in (self.redis, self.lru)]
        assert outcomes[0] == outcomes[1]
        return outcomes[0]

    @rule(key=_KEYS, value=_VALUES)
    def set(self, key: str, value: bytes) -> None:
        self.both(lambda c: c.set(key, value, 60))

    @rule(key=_KEYS)
    def delete(self, key: str) -> None:
        self.both(lambda c: c.delete(key))

    @rule(key=_KEYS)
    def incr(self, key: str) -> None:
        self.both(lambda c: c.incr(key))

    @rule(key=_KEYS)
    def get(self, key: str) -> None:
        self.both(lambda c: c.get(key))

    @rule(counter=_KEYS, suffix=st.sampled_from(["", ":x"]))
    def get_in_generation(self, counter: str, suffix: str) -> None:
        self.both(lambda c: c.get_in_generation(counter, "p:", suffix))

    @rule(keys=st.lists(_KEYS, min_size=2, max_size=6))
    def gathered_reads(self, keys: list[str]) -> None:
        async def reads(cache: Cache) -> list[Any]:
            calls = [_outcome(cache.get(k)) for k in keys]
            calls += [_outcome(cache.get_in_generation(k, "p:")) for k in keys]
            return await asyncio.gather(*calls)

        self.both(reads)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


async def _outcome(call: Awaitable[Any]) -> Any:
    try:
        return ("value", await call)
    except CacheUnavailable:
        return ("unavailable",)


def test_redis_and_the_lru_agree(redis_url: str, unique: str) -> None:
    CacheAgreement.url, CacheAgreement.namespace = redis_url, unique
    run_state_machine_as_test(
        CacheAgreement,
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None),
    )
