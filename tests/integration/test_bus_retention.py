"""Retention on real brokers: streams and topics the project creates are bounded (max age, max
bytes), and an existing unbounded one is updated in place, keeping what it holds."""

from __future__ import annotations

import nats
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from adapters.kafka_bus import KafkaEventBus
from adapters.nats_bus import NatsEventBus
from core.contracts.bus import drain
from core.errors import BrokerUnavailable
from core.ports.bus import OutgoingMessage, Retention
from entrypoints.container import Container, close_container, resolve
from entrypoints.settings import Settings

WEEK = Retention(max_age=7 * 86400, max_bytes=6 * 1024**2)


async def test_nats_streams_get_their_retention_and_existing_ones_are_updated(
    nats_url: str, unique: str
) -> None:
    fresh, old = f"{unique}.fresh", f"{unique}.old"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await js.add_stream(name=f"OLD_{unique.upper()}", subjects=[old])
        await js.publish(old, b"kept")
        bus = NatsEventBus(
            nats_url,
            streams={old: f"OLD_{unique.upper()}"},
            retention={fresh: WEEK, old: WEEK},
        )
        try:
            await bus.publish(fresh, [OutgoingMessage(data=b"x")])
            await bus.publish(old, [OutgoingMessage(data=b"y")])
            sub = await bus.subscribe(old, f"{unique}-r")
            got = await drain(sub, count=2, patience=10)
            await sub.close()
        finally:
            await bus.close()
        for name in (f"{unique.upper()}_FRESH", f"OLD_{unique.upper()}"):
            config = (await js.stream_info(name)).config
            assert (config.max_age, config.max_bytes) == (WEEK.max_age, WEEK.max_bytes), name
        assert [d.data for d in got] == [b"kept", b"y"]  # updated, not recreated
    finally:
        await nc.close()


async def test_a_stream_larger_than_the_nats_store_is_refused_in_words(
    nats_url: str, unique: str
) -> None:
    """JetStream reserves max_bytes up front; when the store cannot hold it, the error says which
    setting to change instead of nats-py's bare ``ServerError()``."""
    huge = Retention(max_age=3600, max_bytes=1024**5)
    bus = NatsEventBus(nats_url, retention={f"{unique}.huge": huge})
    try:
        with pytest.raises(BrokerUnavailable) as raised:
            await bus.publish(f"{unique}.huge", [OutgoingMessage(data=b"x")])
    finally:
        await bus.close()
    message = str(raised.value)
    assert "insufficient storage" in message, message
    assert "HEXMARKET_TOPIC_MAX_BYTES" in message, message


@pytest.mark.kafka
async def test_kafka_topics_get_their_retention_and_existing_ones_are_updated(
    kafka_bootstrap: str, unique: str
) -> None:
    fresh, old = f"{unique}.fresh", f"{unique}.old"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(old, 2, 1)]).values():
        future.result(30)
    bus = KafkaEventBus(kafka_bootstrap, partitions=3, retention={fresh: WEEK, old: WEEK})
    try:
        await bus.publish(fresh, [OutgoingMessage(data=b"x")])
        await bus.publish(old, [OutgoingMessage(data=b"y")])
    finally:
        await bus.close()
    resources = [ConfigResource("topic", fresh), ConfigResource("topic", old)]
    for resource, future in admin.describe_configs(resources).items():
        entries = future.result(30)
        parts = 3 if resource.name == fresh else 2
        assert entries["retention.ms"].value == str(7 * 86400 * 1000), resource.name
        assert entries["retention.bytes"].value == str(WEEK.max_bytes // parts), resource.name


async def test_the_container_gives_both_buses_the_settings_retention() -> None:
    settings = Settings(
        _env_file=None,
        orders_broker="nats",
        nats_url="nats://127.0.0.1:1",
        orders_retention_hours=1,
        dlq_retention_hours=2,
        topic_max_bytes=1000,
    )
    container = Container(settings=settings)
    bus = await resolve(container.orders_bus())  # a Resource: the container closes it
    try:
        assert bus._retention == {
            "orders": Retention(max_age=3600, max_bytes=1000),
            "orders.dlq": Retention(max_age=7200, max_bytes=1000),
            "goods.events": Retention(max_age=168 * 3600, max_bytes=1000),
        }
    finally:
        await close_container(container)
