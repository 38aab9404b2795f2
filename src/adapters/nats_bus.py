"""The event bus on NATS JetStream (nats-py).

- Logical topics are subjects. Each subject lives in its own stream, named by ``streams``
  (``{"orders": "ORDERS", "orders.dlq": "ORDERS_DLQ", "goods.events": "GOODS_EVENTS"}``); a
  subject without an entry gets the stream named by upper-casing it and replacing every
  non-alphanumeric character with ``_`` (``orders.dlq`` -> ``ORDERS_DLQ``). Dead letters thus
  sit in their own stream, with their own limits, invisible to consumers of ``ORDERS``.
- Streams (file storage, ``duplicate_window``, the subject's ``Retention`` as ``max_age`` /
  ``max_bytes``) and durable pull consumers (explicit ack, ``ack_wait``) are created
  idempotently on first use. An existing stream is updated in place when its subject or its
  retention differs (never recreated: what it holds stays); consumers are left as they are.
- Publishing pipelines the batch (``publish_async``: messages leave in order on the one
  connection) and waits for every ``PubAck``. ``key`` travels as ``Nats-Msg-Id``: the stream
  drops a key it has stored within the duplicate window. A message larger than the server's
  ``max_payload`` (1 MB by default) or than the stream accepts is refused for what it is:
  the call fails with ``MessageRefused`` naming those messages once every other one is
  acknowledged (never ``BrokerUnavailable``, which the caller retries).
- Consuming is a pull from the durable through one inbox subscription (``NatsSubscription``).
  When ``ack`` returns, the server has recorded the acks: plain acks, then a double ack of the
  batch's last message, whose reply follows the others. Closing a subscription naks what it
  fetched (or buffered) but did not ack, so the next consumer gets those at once; after a crash
  they come back when ``ack_wait`` expires.
- The connection opens lazily on first use and reconnects by itself; every nats-py error
  surfaces as ``BrokerUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import APIError

from core import tracing
from core.errors import BrokerUnavailable, MessageRefused
from core.ports.bus import Delivery, OutgoingMessage, Retention

log = logging.getLogger(__name__)

_MSG_ID = "Nats-Msg-Id"
_STREAM_IN_USE = 10058
_INSUFFICIENT_RESOURCES = 10047  # the stream's limits do not fit the server's storage
#: JetStream API error codes that refuse a message for what it is (too large for the stream).
_REFUSED_CODES = frozenset({10054})
#: Bytes a message's protocol line and header framing may add, beyond payload and headers.
_FRAMING = 64
#: Seconds a close may spend draining (or closing) the connection.
_CLOSE_WAIT = 2.0


def stream_for(subject: str, streams: Mapping[str, str]) -> str:
    """The stream that holds ``subject``: from ``streams``, else derived from the subject."""
    return streams.get(subject) or re.sub(r"[^A-Za-z0-9]", "_", subject).upper()


class NatsEventBus:
    def __init__(
        self,
        url: str,
        *,
        streams: Mapping[str, str] | None = None,
        duplicate_window: float = 120.0,
        ack_wait: float = 30.0,
        max_ack_pending: int = 20_000,
        publish_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        publish_window: int = 1000,
        retention: Mapping[str, Retention] | None = None,
    ) -> None:
        self._url = url
        self._retention = dict(retention or {})
        self._streams = dict(streams or {})
        self._duplicate_window = duplicate_window
        self._ack_wait = ack_wait
        self._max_ack_pending = max_ack_pending
        self._publish_timeout = publish_timeout
        self._publish_window = max(1, publish_window)
        self._connect_timeout = connect_timeout
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()
        self._subscriptions: list[NatsSubscription] = []

    async def _context(self) -> JetStreamContext:
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            return self._js
        async with self._lock:
            if self._js is None or self._nc is None or self._nc.is_closed:
                try:
                    self._nc = await nats.connect(
                        self._url,
                        connect_timeout=self._connect_timeout,
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        error_cb=_log_error,
                    )
                except (OSError, nats.errors.Error, TimeoutError) as exc:
                    raise BrokerUnavailable(f"NATS unreachable at {self._url}: {exc}") from exc
                self._js = self._nc.jetstream(timeout=self._publish_timeout)
                self._ready.clear()
            return self._js

    async def start(self) -> None:
        """Connect and create every configured stream (optional: all calls do it lazily)."""
        for subject in self._streams:
            await self._ensure_stream(subject)

    async def _ensure_stream(self, subject: str) -> tuple[JetStreamContext, str]:
        js = await self._context()
        stream = stream_for(subject, self._streams)
        if subject in self._ready:
            return js, stream
        limits = self._limits(subject)
        try:
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                try:
                    await js.add_stream(
                        StreamConfig(
                            name=stream,
                            subjects=[subject],
                            storage=StorageType.FILE,
                            duplicate_window=self._duplicate_window,
                            **limits,
                        )
                    )
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != _STREAM_IN_USE:  # someone else just created it
                        raise
            else:
                config = info.config
                subjects = list(config.subjects or [])
                changed = subject not in subjects
                if changed:
                    config.subjects = [*subjects, subject]
                for name, value in limits.items():
                    if getattr(config, name) != value:
                        setattr(config, name, value)
                        changed = True
                if changed:
                    await js.update_stream(config)
        except nats.js.errors.APIError as exc:
            raise BrokerUnavailable(_provisioning_failure(stream, limits, exc)) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot provision stream {stream}: {exc!r}") from exc
        self._ready.add(subject)
        return js, stream

    def _limits(self, subject: str) -> dict[str, Any]:
        """The stream limits of ``subject``'s retention, as nats-py reports them back."""
        retention = self._retention.get(subject)
        if retention is None:
            return {}
        return {
            "max_age": float(retention.max_age) if retention.max_age > 0 else 0.0,
            "max_bytes": int(retention.max_bytes) if retention.max_bytes > 0 else -1,
        }

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        js, stream = await self._ensure_stream(topic)
        refused: dict[int, str] = {}
        with tracing.send_span("nats", topic, len(messages)) as span:
            context = span.headers()  # for the messages that carry no trace context of theirs
            for start in range(0, len(messages), self._publish_window):
                window = messages[start : start + self._publish_window]
                for offset, reason in (
                    await self._publish_window_of(js, topic, stream, window, context)
                ).items():
                    refused[start + offset] = reason
        if refused:
            raise MessageRefused(
                f"JetStream refused {len(refused)} message(s) on {topic}: {refused[min(refused)]}",
                sorted(refused),
            )

    async def _publish_window_of(
        self,
        js: JetStreamContext,
        topic: str,
        stream: str,
        messages: Sequence[OutgoingMessage],
        context: Mapping[str, str],
    ) -> dict[int, str]:
        """Pipeline ``messages`` and wait for every ``PubAck``, all within ``publish_timeout``.

        ``wait_stall=None``: with a timeout, nats-py wraps each publish in a task, so the
        loop yields after every message and the flusher writes each one in its own
        ``send()``; without it nothing yields until the acks are awaited, and the window
        leaves in a few large writes. The deadline still bounds a stall (more publishes
        pending than the context allows) as well as the acks.

        Returns the messages refused for what they are, by position, with the reason. One over
        the connection's ``max_payload`` is refused before it is sent: nats-py would raise only
        after registering its ack future, which then never completes."""
        futures: dict[int, asyncio.Future[Any]] = {}
        refused: dict[int, str] = {}
        assert self._nc is not None
        limit = self._nc.max_payload
        try:
            async with asyncio.timeout(self._publish_timeout):
                for index, message in enumerate(messages):
                    headers = dict(message.headers)
                    if context and tracing.TRACEPARENT not in headers:
                        headers.update(context)
                    if message.key is not None:
                        headers[_MSG_ID] = message.key
                    size = len(message.data) + sum(len(k) + len(v) + 4 for k, v in headers.items())
                    if size + _FRAMING > limit:
                        refused[index] = f"{size} bytes exceed the server's max_payload {limit}"
                        continue
                    futures[index] = await js.publish_async(
                        topic,
                        message.data,
                        wait_stall=None,
                        stream=stream,
                        headers=headers or None,
                    )
                results = await asyncio.gather(*futures.values(), return_exceptions=True)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream did not acknowledge a publish: {exc!r}") from exc
        finally:
            for future in futures.values():
                if not future.done():
                    future.cancel()
        for index, result in zip(futures, results, strict=True):
            if not isinstance(result, BaseException):
                continue
            if isinstance(result, nats.js.errors.APIError) and result.err_code in _REFUSED_CODES:
                refused[index] = repr(result)
                continue
            raise BrokerUnavailable(f"JetStream did not acknowledge a publish: {result!r}")
        return refused

    async def subscribe(self, topic: str, group: str) -> NatsSubscription:
        js, stream = await self._ensure_stream(topic)
        config = ConsumerConfig(
            name=group,
            durable_name=group,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_ack_pending=self._max_ack_pending,
            max_deliver=-1,
            filter_subject=topic,
        )
        try:
            try:
                await js.consumer_info(stream, group)
            except nats.js.errors.NotFoundError:
                try:
                    await js.add_consumer(stream, config=config)
                except nats.js.errors.BadRequestError:
                    # two subscribers racing to create the durable: the loser binds to it
                    await js.consumer_info(stream, group)
            assert self._nc is not None
            subscription = NatsSubscription(self._nc, stream, group, self._publish_timeout)
            await subscription.start()
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot create consumer {group}: {exc!r}") from exc
        self._subscriptions.append(subscription)
        return subscription

    async def lag(self, topic: str, group: str) -> dict[str, int]:
        """The durable's pending plus unacknowledged messages (``{}`` before it exists)."""
        js = await self._context()
        try:
            info = await js.consumer_info(stream_for(topic, self._streams), group)
        except nats.js.errors.NotFoundError:
            return {}
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot read consumer {group}: {exc!r}") from exc
        return {"": int(info.num_pending or 0) + int(info.num_ack_pending or 0)}

    async def ping(self) -> None:
        js = await self._context()
        try:
            await js.account_info()
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError) as exc:
            raise BrokerUnavailable(
                "JetStream is not enabled (start nats-server with -js)"
            ) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream not answering: {exc!r}") from exc

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            # drain only a live connection, briefly: a stop must stay prompt with NATS away
            try:
                if not nc.is_connected:
                    raise ConnectionError("not connected")
                await asyncio.wait_for(nc.drain(), _CLOSE_WAIT)
            except (nats.errors.Error, OSError, TimeoutError):
                with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                    await asyncio.wait_for(nc.close(), _CLOSE_WAIT)


async def _log_error(exc: Exception) -> None:
    log.warning("nats connection error: %r", exc)


class NatsSubscription:
    """A durable pull consumer read through one inbox subscription of its own.

    ``fetch`` sends pull requests to the consumer's ``CONSUMER.MSG.NEXT`` subject with the
    inbox as reply subject: first ``no_wait`` (the server answers at once with what the stream
    holds, then a ``404``), and only if that brought nothing, one that lingers until the first
    message or ``timeout`` (``expires``). nats-py's reader hands every arriving message to
    ``_on_message``, which only appends it to a buffer: no task, timer or future per message,
    as nats-py's own ``fetch`` has. Messages arriving after a ``fetch`` returned stay buffered
    for the next one (and are nak-ed on close). Status messages ``404``/``408``/``409`` end a
    request, ``100`` is a heartbeat; any other status fails the next ``fetch``.

    ``ack`` sends a plain ack for every message but the last, and a double ack (``ack_sync``)
    for the last: the server processes one connection's acks of one consumer in order, so its
    reply to the last one confirms them all, in one round trip per batch.
    """

    def __init__(self, nc: NatsClient, stream: str, durable: str, timeout: float) -> None:
        self._nc = nc
        self._stream = stream
        self._timeout = timeout
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._buffer: deque[Msg] = deque()
        self._wake = asyncio.Event()
        self._ended = 0  # pull requests the server reported finished (404/408/409)
        self._failure: str | None = None
        self._unacked: dict[str, Msg] = {}  # by reply subject: unique per delivery
        self._closed = False

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        if headers is not None and _STATUS in headers:
            status = headers[_STATUS]
            if status in _REQUEST_ENDED:
                self._ended += 1
            elif status != _HEARTBEAT:
                self._failure = f"{status} {headers.get(_DESCRIPTION, '')}".strip()
            self._wake.set()
            return
        self._buffer.append(msg)
        self._wake.set()

    async def _pull(self, request: dict[str, Any], until: int, timeout: float) -> None:  # noqa: ASYNC109
        """Send a pull request; wait until ``until`` messages are buffered, the server ends a
        request, or ``timeout`` passes."""
        ended = self._ended
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream pull request failed: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._buffer) < until and self._ended == ended and self._failure is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        if self._closed:
            raise BrokerUnavailable("subscription is closed")
        wanted = max(1, max_messages)
        buffer = self._buffer
        if len(buffer) < wanted:
            # what the stream holds now: the server answers at once (messages, then 404)
            need = wanted - len(buffer)
            await self._pull({"batch": need, "no_wait": True}, wanted, max(timeout, 1.0))
            if not buffer and timeout > 0:  # nothing yet: wait for the first to arrive
                expires = int(max(timeout, 0.01) * 1e9)
                await self._pull({"batch": wanted, "expires": expires}, 1, timeout)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise BrokerUnavailable(f"JetStream fetch failed: {failure}")
        deliveries = []
        for _ in range(min(wanted, len(buffer))):
            m = buffer.popleft()
            self._unacked[m.reply] = m
            key = None
            headers: dict[str, str] = {}
            if m.headers:
                for k, v in m.headers.items():
                    if k == _MSG_ID:
                        key = v
                    elif not k.startswith("Nats-"):
                        headers[k] = v
            deliveries.append(
                Delivery(
                    data=m.data,
                    key=key,
                    headers=headers,
                    source={"stream": self._stream, "seq": _stream_seq(m)},
                    token=m,
                )
            )
        return deliveries

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        msgs = [d.token for d in deliveries if isinstance(d.token, Msg)]
        if len(msgs) != len(deliveries):
            raise ValueError("deliveries from another bus")
        if not msgs:
            return
        *first, last = msgs
        nc = self._nc
        try:  # a repeated ack (a retried batch) is harmless: the server ignores it
            for m in first:
                await nc.publish(m.reply)
            await nc.request(last.reply, b"", timeout=self._timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream did not confirm the acks: {exc!r}") from exc
        for m in msgs:
            self._unacked.pop(m.reply, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = [*self._unacked.values(), *self._buffer]
        self._unacked, self._buffer = {}, deque()
        try:
            for m in pending:
                await self._nc.publish(m.reply, _NAK)
            if self._sub is not None:
                await self._sub.unsubscribe()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.info("closing a JetStream subscription: %r (unacked ones return on ack_wait)", exc)


_NAK = b"-NAK"
_STATUS = "Status"
_DESCRIPTION = "Description"
_HEARTBEAT = "100"
_REQUEST_ENDED = frozenset({"404", "408", "409"})


def _stream_seq(msg: Msg) -> int:
    """The stream sequence from the ack subject (``$JS.ACK.<stream>.<consumer>.<delivered>.
    <stream seq>...``, or with domain and account hash after ``ACK``)."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    return int(msg.metadata.sequence.stream)


def _provisioning_failure(stream: str, limits: Mapping[str, Any], exc: APIError) -> str:
    """What JetStream said, in words: nats-py's ``repr`` of an API error is a bare class name."""
    said = f"{exc.description or type(exc).__name__} (err_code {exc.err_code})"
    if exc.err_code == _INSUFFICIENT_RESOURCES and limits.get("max_bytes", -1) > 0:
        return (
            f"cannot provision stream {stream}: {said}; JetStream reserves each stream's"
            f" max_bytes ({limits['max_bytes']}) up front: lower HEXMARKET_TOPIC_MAX_BYTES or"
            " raise the server's jetstream max_file_store"
        )
    return f"cannot provision stream {stream}: {said}"


async def probe(url: str, within: float) -> None:
    """Return if the NATS server at ``url`` answers ``NatsEventBus.ping`` (JetStream enabled)
    within about ``within`` seconds, on a connection of its own, else raise
    ``BrokerUnavailable``."""
    bus = NatsEventBus(url, connect_timeout=within, publish_timeout=within)
    try:
        await bus.ping()
    finally:
        await bus.close()
