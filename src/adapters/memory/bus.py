"""An in-process event bus: the reference model of the bus contract, and the broker of the
single-process demo. One ordered log per topic; each consumer group remembers which messages it
acknowledged and which are leased to an open subscription (JetStream's explicit-ack model).

``available = False`` simulates an outage: every call raises ``BrokerUnavailable``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import attrs

from core.errors import BrokerUnavailable, MessageRefused
from core.ports.bus import Delivery, OutgoingMessage


@attrs.frozen(kw_only=True)
class _Stored:
    data: bytes
    key: str | None
    headers: dict[str, str]


@attrs.define
class _Group:
    floor: int = 0  # every index below it is acknowledged (keeps fetch cost off the history)
    acked: set[int] = attrs.field(factory=set)  # acknowledged indexes at or above the floor
    leased: dict[int, int] = attrs.field(factory=dict)  # index -> subscription id


@attrs.frozen
class _Token:
    topic: str
    group: str
    index: int
    subscription: int


class MemoryEventBus:
    """``dedupe_by_key``: drop a publish whose key is already stored in the topic (like a
    JetStream duplicate window that never ends). Off, it behaves like Kafka: every publish is
    stored."""

    def __init__(self, *, dedupe_by_key: bool = True, max_message_bytes: int | None = None) -> None:
        self.dedupe_by_key = dedupe_by_key
        #: like a broker's message size limit: larger messages are refused (``MessageRefused``)
        self.max_message_bytes = max_message_bytes
        self.available = True
        self._topics: dict[str, list[_Stored]] = {}
        self._keys: dict[str, set[str]] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._ids = itertools.count(1)
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _check(self) -> None:
        if not self.available:
            raise BrokerUnavailable("in-memory broker is marked unavailable")

    def messages(self, topic: str) -> list[bytes]:
        """Every payload stored in ``topic``, in order (for tests and the demo)."""
        return [m.data for m in self._topics.get(topic, [])]

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self._check()
        if not messages:
            return
        log = self._topics.setdefault(topic, [])
        keys = self._keys.setdefault(topic, set())
        limit = self.max_message_bytes
        refused: list[int] = []
        for index, message in enumerate(messages):
            if limit is not None and len(message.data) > limit:
                refused.append(index)
                continue
            if message.key is not None and self.dedupe_by_key:
                if message.key in keys:
                    continue
                keys.add(message.key)
            log.append(_Stored(data=message.data, key=message.key, headers=dict(message.headers)))
        if refused:
            async with self._condition():
                self._condition().notify_all()
            raise MessageRefused(f"{len(refused)} message(s) over {limit} bytes", refused)
        async with self._condition():
            self._condition().notify_all()

    async def subscribe(self, topic: str, group: str) -> MemorySubscription:
        self._check()
        self._topics.setdefault(topic, [])
        self._groups.setdefault((topic, group), _Group())
        return MemorySubscription(self, topic, group, next(self._ids))

    async def lag(self, topic: str, group: str) -> dict[str, int]:
        self._check()
        state = self._groups.get((topic, group))
        if state is None:
            return {}
        return {"0": len(self._topics.get(topic, [])) - state.floor - len(state.acked)}

    async def ping(self) -> None:
        self._check()

    async def close(self) -> None:
        return None

    # -- used by MemorySubscription ---------------------------------------------------------

    def _take(self, topic: str, group: str, subscription: int, limit: int) -> list[Delivery]:
        state = self._groups[(topic, group)]
        taken: list[Delivery] = []
        log = self._topics[topic]
        for index in range(state.floor, len(log)):
            stored = log[index]
            if len(taken) >= limit:
                break
            if index in state.acked or index in state.leased:
                continue
            state.leased[index] = subscription
            taken.append(
                Delivery(
                    data=stored.data,
                    key=stored.key,
                    headers=stored.headers,
                    source={"topic": topic, "partition": 0, "offset": index},
                    token=_Token(topic, group, index, subscription),
                )
            )
        return taken

    def _ack(self, tokens: Sequence[_Token]) -> None:
        for token in tokens:
            state = self._groups[(token.topic, token.group)]
            if state.leased.get(token.index) == token.subscription:
                del state.leased[token.index]
                state.acked.add(token.index)
                while state.floor in state.acked:
                    state.acked.discard(state.floor)
                    state.floor += 1

    async def _release(self, topic: str, group: str, subscription: int) -> None:
        state = self._groups[(topic, group)]
        for index in [i for i, s in state.leased.items() if s == subscription]:
            del state.leased[index]
        async with self._condition():
            self._condition().notify_all()


class MemorySubscription:
    def __init__(self, bus: MemoryEventBus, topic: str, group: str, ident: int) -> None:
        self._bus = bus
        self._topic = topic
        self._group = group
        self._id = ident
        self._closed = False

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        self._bus._check()
        if self._closed:
            raise BrokerUnavailable("subscription is closed")
        condition = self._bus._condition()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        async with condition:
            while True:
                taken = self._bus._take(self._topic, self._group, self._id, max_messages)
                remaining = deadline - loop.time()
                if taken or remaining <= 0:
                    return taken
                try:
                    await asyncio.wait_for(condition.wait(), remaining)
                except TimeoutError:
                    return self._bus._take(self._topic, self._group, self._id, max_messages)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._bus._check()
        tokens = [d.token for d in deliveries]
        if not all(isinstance(t, _Token) for t in tokens):
            raise ValueError("deliveries from another bus")
        self._bus._ack([t for t in tokens if isinstance(t, _Token)])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._bus._release(self._topic, self._group, self._id)
