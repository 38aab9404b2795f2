"""The publish side of the broker adapters beyond the shared contract: batches larger than
the adapter's pipelining window, and a publish that cannot be acknowledged (real servers)."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import StreamConfig

from adapters.nats_bus import NatsEventBus, stream_for
from core.contracts.bus import drain
from core.errors import BrokerUnavailable
from core.ports.bus import OutgoingMessage


async def test_nats_publishes_a_batch_larger_than_the_window_whole_and_in_order(
    nats_url: str, unique: str
) -> None:
    topic = f"{unique}.events"
    bus = NatsEventBus(nats_url, publish_window=7)
    messages = [OutgoingMessage(data=f"m{n}".encode(), key=f"k{n}") for n in range(50)]
    try:
        await bus.publish(topic, messages)
        await bus.publish(topic, messages[:20])  # the duplicate window drops repeated keys
        subscription = await bus.subscribe(topic, f"{unique}-g")
        got = await drain(subscription, count=len(messages), patience=10)
        await subscription.ack(got)
        await subscription.close()
        nc = await nats.connect(nats_url)
        try:
            stored = (await nc.jetstream().stream_info(stream_for(topic, {}))).state.messages
        finally:
            await nc.close()
    finally:
        await bus.close()
    assert stored == len(messages)
    assert [d.data for d in got] == [m.data for m in messages]
    assert [d.key for d in got] == [m.key for m in messages]


async def test_nats_publish_without_an_ack_raises_broker_unavailable(
    nats_url: str, unique: str
) -> None:
    """A subject no stream listens on is never acknowledged: the publish gives up at its
    deadline with the port's error instead of hanging (nothing is stored)."""
    topic = f"{unique}.nowhere"
    bus = NatsEventBus(nats_url, streams={topic: f"{unique.upper()}_ELSEWHERE"}, publish_timeout=1)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        # the stream the adapter expects exists, but on another subject: JetStream answers
        # the expected-stream check with an error, or (no stream on the subject) never
        await js.add_stream(StreamConfig(name=f"{unique.upper()}_ELSEWHERE", subjects=[topic]))
        await bus.start()
        await js.update_stream(
            StreamConfig(name=f"{unique.upper()}_ELSEWHERE", subjects=[f"{topic}.other"])
        )
        with pytest.raises(BrokerUnavailable):
            await bus.publish(topic, [OutgoingMessage(data=b"x", key=str(n)) for n in range(5)])
    finally:
        await nc.close()
        await bus.close()
