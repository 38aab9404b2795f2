"""``NatsDeadLetterArchive``: the dead-letter stream on JetStream, read without disturbing its
consumers.

A scan reads through an **ephemeral** pull consumer of its own (no acks: ``AckPolicy.NONE``,
in memory, removed at the end of the scan, and by the server anyway ``inactive_threshold``
after a reader that died), from the first message (or the first stored at ``since``) up to the
stream's last sequence when the scan started. ``get`` is a direct read of one message by its
stream sequence. No durable consumer is created or moved, nothing is acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from core.errors import BrokerUnavailable
from core.ports.dead_letters import KeptDeadLetter

log = logging.getLogger(__name__)

_BATCH = 256


class NatsDeadLetterArchive:
    name = "nats"

    def __init__(self, url: str, *, stream: str, subject: str, timeout: float = 5.0) -> None:
        self._url = url
        self._stream = stream
        self._subject = subject
        self._timeout = timeout
        self._nc: NatsClient | None = None

    async def _js(self) -> JetStreamContext:
        if self._nc is None or self._nc.is_closed:
            try:
                self._nc = await nats.connect(
                    self._url, connect_timeout=self._timeout, max_reconnect_attempts=2
                )
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                raise BrokerUnavailable(f"NATS unreachable at {self._url}: {exc}") from exc
        return self._nc.jetstream(timeout=self._timeout)

    async def _last_seq(self, js: JetStreamContext) -> int | None:
        """The stream's last sequence now; ``None`` when the stream does not exist (nothing was
        ever dead-lettered)."""
        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            return None
        return int(info.state.last_seq or 0)

    async def scan(self, since: datetime | None = None) -> AsyncIterator[KeptDeadLetter]:
        try:
            js = await self._js()
            last = await self._last_seq(js)
            if not last:
                return
            config = ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL if since is None else DeliverPolicy.BY_START_TIME,
                opt_start_time=since,
                inactive_threshold=60.0,
                mem_storage=True,
                num_replicas=1,
            )
            sub = await js.pull_subscribe(self._subject, stream=self._stream, config=config)
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot read stream {self._stream}: {exc!r}") from exc
        try:
            while True:
                try:
                    messages = await sub.fetch(_BATCH, timeout=self._timeout)
                except (nats.errors.TimeoutError, TimeoutError):
                    return  # nothing more within the timeout: the rest is newer than the start
                except nats.errors.Error as exc:
                    raise BrokerUnavailable(f"reading stream {self._stream}: {exc!r}") from exc
                for m in messages:
                    meta = m.metadata
                    seq = int(meta.sequence.stream)
                    if seq > last:
                        return
                    yield KeptDeadLetter(ref=str(seq), data=m.data, stored_at=meta.timestamp)
                    if seq == last or meta.num_pending == 0:
                        return
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, ValueError):
                await sub.unsubscribe()
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError):
                consumer = sub._consumer  # the ephemeral's name: nats-py keeps it only there
                if consumer:
                    await js.delete_consumer(self._stream, consumer)

    async def get(self, ref: str) -> KeptDeadLetter | None:
        if not ref.isdigit() or int(ref) < 1:
            return None
        js = await self._js()
        try:
            raw = await js.get_msg(self._stream, int(ref))
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise BrokerUnavailable(f"reading stream {self._stream}: {exc!r}") from exc
        if raw.subject != self._subject:
            return None
        return KeptDeadLetter(ref=ref, data=raw.data or b"", stored_at=raw.time)

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                await nc.close()
