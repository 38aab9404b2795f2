"""The event bus on NATS JetStream (nats-py).

- Logical topics are subjects. Each subject lives in its own stream, named by ``streams``
  (``{"orders": "ORDERS", "orders.dlq": "ORDERS_DLQ", "goods.events": "GOODS_EVENTS"}``); a
  subject without an entry gets the stream named by upper-casing it and replacing every
  non-alphanumeric character with ``_`` (``orders.dlq`` -> ``ORDERS_DLQ``). Dead letters thus
  sit in their own stream, with their own limits, invisible to consumers of ``ORDERS``.
- Streams (file storage, ``duplicate_window``) and durable pull consumers (explicit ack,
  ``ack_wait``) are created idempotently on first use; existing ones are left as they are.
- Publishing pipelines the batch (``publish_async``: messages leave in order on the one
  connection) and waits for every ``PubAck``. ``key`` travels as ``Nats-Msg-Id``: the stream
  drops a key it has stored within the duplicate window.
- Acks are double acks (``ack_sync``): when ``ack`` returns, the server has recorded them.
  Closing a subscription naks what it fetched but did not ack, so the next consumer gets those
  at once; after a crash they come back when ``ack_wait`` expires.
- The connection opens lazily on first use and reconnects by itself; every nats-py error
  surfaces as ``BrokerUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from core.errors import BrokerUnavailable
from core.ports.bus import Delivery, OutgoingMessage

log = logging.getLogger(__name__)

_MSG_ID = "Nats-Msg-Id"
_STREAM_IN_USE = 10058


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
    ) -> None:
        self._url = url
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
                        )
                    )
                except nats.js.errors.BadRequestError as exc:
                    if exc.err_code != _STREAM_IN_USE:  # someone else just created it
                        raise
            else:
                subjects = list(info.config.subjects or [])
                if subject not in subjects:
                    info.config.subjects = [*subjects, subject]
                    await js.update_stream(info.config)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot provision stream {stream}: {exc!r}") from exc
        self._ready.add(subject)
        return js, stream

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        js, stream = await self._ensure_stream(topic)
        for start in range(0, len(messages), self._publish_window):
            await self._publish_window_of(
                js, topic, stream, messages[start : start + self._publish_window]
            )

    async def _publish_window_of(
        self, js: JetStreamContext, topic: str, stream: str, messages: Sequence[OutgoingMessage]
    ) -> None:
        """Pipeline ``messages`` and wait for every ``PubAck``, all within ``publish_timeout``.

        ``wait_stall=None``: with a timeout, nats-py wraps each publish in a task, so the
        loop yields after every message and the flusher writes each one in its own
        ``send()``; without it nothing yields until the acks are awaited, and the window
        leaves in a few large writes. The deadline still bounds a stall (more publishes
        pending than the context allows) as well as the acks."""
        futures: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self._publish_timeout):
                for message in messages:
                    headers = dict(message.headers)
                    if message.key is not None:
                        headers[_MSG_ID] = message.key
                    futures.append(
                        await js.publish_async(
                            topic,
                            message.data,
                            wait_stall=None,
                            stream=stream,
                            headers=headers or None,
                        )
                    )
                await asyncio.gather(*futures)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream did not acknowledge a publish: {exc!r}") from exc
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()

    async def subscribe(self, topic: str, group: str) -> NatsSubscription:
        js, stream = await self._ensure_stream(topic)
        config = ConsumerConfig(
            durable_name=group,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait,
            max_ack_pending=self._max_ack_pending,
            max_deliver=-1,
            filter_subject=topic,
        )
        try:
            psub = await js.pull_subscribe(topic, durable=group, stream=stream, config=config)
        except nats.js.errors.BadRequestError:
            # two subscribers racing to create the durable: the loser binds to it
            try:
                psub = await js.pull_subscribe_bind(durable=group, stream=stream)
            except (nats.errors.Error, TimeoutError) as exc:
                raise BrokerUnavailable(f"cannot bind consumer {group}: {exc!r}") from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot create consumer {group}: {exc!r}") from exc
        subscription = NatsSubscription(psub, stream, self._publish_timeout)
        self._subscriptions.append(subscription)
        return subscription

    async def ping(self) -> None:
        js = await self._context()
        try:
            await js.account_info()
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"JetStream not answering: {exc!r}") from exc

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except (nats.errors.Error, TimeoutError):
                await nc.close()


async def _log_error(exc: Exception) -> None:
    log.warning("nats connection error: %r", exc)


class NatsSubscription:
    def __init__(self, psub: JetStreamContext.PullSubscription, stream: str, timeout: float):
        self._psub = psub
        self._stream = stream
        self._timeout = timeout
        self._unacked: dict[int, Msg] = {}
        self._closed = False

    async def fetch(self, max_messages: int, timeout: float) -> list[Delivery]:  # noqa: ASYNC109
        if self._closed:
            raise BrokerUnavailable("subscription is closed")
        try:
            msgs = await self._psub.fetch(max(1, max_messages), timeout=max(timeout, 0.01))
        except TimeoutError:  # nats.errors.TimeoutError too: nothing arrived in time
            return []
        except nats.errors.Error as exc:
            raise BrokerUnavailable(f"JetStream fetch failed: {exc!r}") from exc
        deliveries = []
        for m in msgs:
            headers = dict(m.headers or {})
            seq = m.metadata.sequence.stream
            self._unacked[seq] = m
            deliveries.append(
                Delivery(
                    data=m.data,
                    key=headers.pop(_MSG_ID, None),
                    headers={k: v for k, v in headers.items() if not k.startswith("Nats-")},
                    source={"stream": self._stream, "seq": seq},
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
        results = await asyncio.gather(
            *(m.ack_sync(timeout=self._timeout) for m in msgs), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException) and not _already_acked(r)]
        for m, r in zip(msgs, results, strict=True):
            if not isinstance(r, BaseException) or _already_acked(r):
                self._unacked.pop(m.metadata.sequence.stream, None)
        if failures:
            raise BrokerUnavailable(f"JetStream did not confirm {len(failures)} ack(s)") from (
                failures[0] if isinstance(failures[0], Exception) else None
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending, self._unacked = list(self._unacked.values()), {}
        try:
            for m in pending:
                await m.nak()
            await self._psub.unsubscribe()
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("closing a JetStream subscription: %r (unacked ones return on ack_wait)", exc)


def _already_acked(exc: BaseException) -> bool:
    return isinstance(exc, nats.errors.MsgAlreadyAckdError)
