"""Settings from ``HEXMARKET_*`` environment variables (and ``.env``), validated at start.

Every field is documented: the README's configuration table is checked against this class.
A ``None`` server URL means "start an embedded server" (only ``hexmarket dev`` and the test
supervisor do that); the long-running processes require real URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEXMARKET_", env_file=".env", extra="ignore", frozen=True
    )

    # --- servers -------------------------------------------------------------------------------
    postgres_url: str | None = Field(None, description="PostgreSQL DSN (postgresql://...).")
    redis_url: str | None = Field(None, description="Redis URL (redis://host:port/db).")
    nats_url: str | None = Field(None, description="NATS URL (nats://host:port), JetStream on.")
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "HEXMARKET_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka bootstrap servers (host:port,...). Also read from KAFKA_BOOTSTRAP_SERVERS.",
    )
    clickhouse_url: str | None = Field(
        None, description="ClickHouse URL: http://user:pass@host:8123/db, or chdb:///path (embedded)."
    )
    data_dir: Path = Field(
        Path(".hexmarket"), description="Work directory of the embedded servers (`hexmarket dev`)."
    )

    # --- HTTP ----------------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="HTTP listen address.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP listen port.")
    api_token: str | None = Field(
        None, description="Bearer token required by mutating catalog routes; unset = open."
    )
    pg_pool_size: int = Field(20, ge=2, description="Largest PostgreSQL connection pool size.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest accepted request body.")

    # --- adapter choice ------------------------------------------------------------------------
    catalog_store: Literal["postgres", "memory"] = Field(
        "postgres", description="Catalog repository adapter."
    )
    list_cache: Literal["redis", "lru"] = Field("redis", description="Goods list cache adapter.")
    list_cache_ttl: float = Field(60.0, gt=0, description="Goods list cache TTL, seconds.")
    orders_store: Literal["postgres", "memory"] = Field(
        "postgres", description="Order repository adapter."
    )
    orders_cache: Literal["lru", "redis"] = Field("lru", description="Order cache adapter.")
    orders_cache_size: int = Field(
        100_000, ge=1, description="Orders kept in the in-memory order cache."
    )
    orders_warm_count: int = Field(
        10_000, ge=0, description="Newest orders loaded into the cache at HTTP start."
    )
    orders_broker: Literal["nats", "kafka", "memory"] = Field(
        "nats", description="Broker the orders arrive on."
    )
    events_broker: Literal["nats", "kafka", "memory"] = Field(
        "nats", description="Broker the audit events travel on."
    )
    log_store: Literal["clickhouse", "memory"] = Field(
        "clickhouse", description="Audit log store adapter."
    )

    # --- broker names (public contract) --------------------------------------------------------
    orders_topic: str = Field("orders", description="Kafka topic / NATS subject of orders.")
    orders_stream: str = Field("ORDERS", description="JetStream stream holding the orders subject.")
    orders_dlq_topic: str = Field("orders.dlq", description="Dead-letter topic / subject.")
    orders_group: str = Field("hexmarket-orders", description="Consumer group / durable name.")
    events_topic: str = Field("goods.events", description="Audit events topic / subject.")
    events_stream: str = Field(
        "GOODS_EVENTS", description="JetStream stream holding the events subject."
    )
    events_group: str = Field("hexmarket-logs", description="Log writer group / durable name.")

    # --- batching ------------------------------------------------------------------------------
    ingest_batch_size: int = Field(1000, ge=1, description="Orders per ingest batch, at most.")
    ingest_batch_ms: int = Field(200, ge=1, description="Longest wait to fill an ingest batch.")
    log_batch_size: int = Field(1000, ge=1, description="Events per ClickHouse insert, at most.")
    log_batch_ms: int = Field(500, ge=1, description="Longest wait to fill a log batch.")
    relay_batch_size: int = Field(500, ge=1, description="Outbox events claimed per relay round.")

    # --- logging -------------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")
