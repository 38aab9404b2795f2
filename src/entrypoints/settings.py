"""Settings from ``HEXMARKET_*`` environment variables (and ``.env``), validated at start.

Every field is documented: the README's configuration table is checked against this class.
A ``None`` server URL means "start an embedded server" (only ``hexmarket dev`` and the test
supervisor do that); the long-running processes require real URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.ports.bus import Retention

_URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "postgres_url": ("postgresql://", "postgres://"),
    "redis_url": ("redis://", "rediss://", "unix://"),
    "nats_url": ("nats://", "tls://", "ws://", "wss://"),
    "clickhouse_url": ("http://", "https://", "chdb://"),
    "otel_exporter_otlp_endpoint": ("http://", "https://"),
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEXMARKET_", env_file=".env", extra="ignore", frozen=True
    )

    # --- servers -------------------------------------------------------------------------------
    postgres_url: str | None = Field(
        None, description="PostgreSQL DSN: postgresql://user:pass@host:5432/db or key=value."
    )
    redis_url: str | None = Field(None, description="Redis URL (redis://host:port/db).")
    nats_url: str | None = Field(None, description="NATS URL (nats://host:port), JetStream on.")
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "HEXMARKET_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka bootstrap servers (host:port,...).",
    )
    clickhouse_url: str | None = Field(
        None,
        description="ClickHouse URL: http://user:pass@host:8123/db, or chdb:///path (embedded).",
    )
    data_dir: Path = Field(
        Path(".hexmarket"),
        description="Work directory of the embedded servers (`hexmarket dev`); the other"
        " commands find a running `hexmarket dev` there and use its servers for unset URLs.",
    )

    # --- HTTP ----------------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="HTTP listen address.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP listen port.")
    http_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes `serve` runs on the one port (each with its own caches,"
        " warm-up and /metrics).",
    )
    api_token: str | None = Field(
        None, description="Bearer token required by mutating catalog routes; unset = open."
    )
    pg_pool_size: int = Field(20, ge=2, description="Largest PostgreSQL connection pool size.")
    max_body_bytes: int = Field(65536, ge=1024, description="Largest accepted request body.")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of a /metrics listener in the worker processes (HTTP serves /metrics).",
    )
    allowed_hosts: str | None = Field(
        None,
        description="Comma-separated host names the HTTP server answers (`Host` header; `*`: "
        "any); unset: localhost, 127.0.0.1 and [::1] when HEXMARKET_HTTP_HOST is a loopback "
        "address, else any.",
    )
    allowed_origins: str | None = Field(
        None,
        description="Comma-separated origins (`https://shop.example`) allowed to send mutating "
        "requests besides the server's own (`*`: any); requests without `Origin` are not "
        "affected.",
    )
    http_read_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a whole request once connected (or once it "
        "starts the next one); then the connection is closed.",
    )
    http_keep_alive: int = Field(
        5, ge=1, description="Seconds an idle kept-alive HTTP connection stays open."
    )
    ready_cache_seconds: float = Field(
        1.0, ge=0, description="How long a GET /ready result is reused (0: checked every call)."
    )
    metrics_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between the workers' readings of consumer lag and outbox age.",
    )

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

    dead_letter_payload_limit: int = Field(
        65536,
        ge=1024,
        description="Payload bytes kept in a dead letter the broker refused whole (bounded).",
    )

    # --- retention (what the brokers keep) ---------------------------------------------------
    orders_retention_hours: float = Field(
        168, ge=0, description="Hours the orders topic / stream keeps a message (0: forever)."
    )
    events_retention_hours: float = Field(
        168, ge=0, description="Hours the audit events topic / stream keeps one (0: forever)."
    )
    dlq_retention_hours: float = Field(
        720, ge=0, description="Hours the dead-letter topic / stream keeps one (0: forever)."
    )
    topic_max_bytes: int = Field(
        1024**3,
        ge=0,
        description="Bytes each of those topics / streams keeps, oldest dropped first"
        " (Kafka: split over the partitions; JetStream reserves it up front; 0: no limit).",
    )

    outbox_keep_sent_hours: float = Field(
        24,
        ge=0,
        description="Hours a sent outbox row is kept before the relay deletes it (0: forever).",
    )

    def retention(self) -> dict[str, Retention]:
        """Each topic the project creates, with what its broker keeps of it."""

        def keep(hours: float) -> Retention:
            return Retention(max_age=hours * 3600, max_bytes=self.topic_max_bytes)

        return {
            self.orders_topic: keep(self.orders_retention_hours),
            self.orders_dlq_topic: keep(self.dlq_retention_hours),
            self.events_topic: keep(self.events_retention_hours),
        }

    # --- batching ------------------------------------------------------------------------------
    ingest_batch_size: int = Field(1000, ge=1, description="Orders per ingest batch, at most.")
    ingest_batch_ms: int = Field(200, ge=1, description="Longest wait to fill an ingest batch.")
    log_batch_size: int = Field(1000, ge=1, description="Events per ClickHouse insert, at most.")
    log_batch_ms: int = Field(500, ge=1, description="Longest wait to fill a log batch.")
    relay_batch_size: int = Field(
        1000, ge=1, description="Outbox events claimed per relay round (two rounds run at once)."
    )
    relay_lanes: int = Field(
        2,
        ge=1,
        le=16,
        description="Outbox rounds a relay keeps in flight; 1 keeps each good's events in order.",
    )
    relay_idle_ms: int = Field(
        1000, ge=1, description="Longest relay wait for new outbox events (NOTIFY wakes it sooner)."
    )
    nats_ack_wait: float = Field(
        30.0, gt=0, description="JetStream ack wait, seconds: when unacked events are redelivered."
    )

    # --- logging -------------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    # --- tracing (entrypoints/tracing.py; off unless an endpoint or an exporter is set) ---------
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description="OTLP/HTTP collector base URL (http://jaeger:4318): setting it turns tracing"
        " on; spans go to its /v1/traces (empty: unset).",
    )
    otel_traces_exporter: Literal["otlp", "console", "none"] | None = Field(
        None,
        validation_alias=AliasChoices("HEXMARKET_OTEL_TRACES_EXPORTER", "OTEL_TRACES_EXPORTER"),
        description="`otlp` (to the endpoint above, or the OTLP default localhost:4318),"
        " `console` (spans printed on stdout) or `none`; unset: `otlp` if an endpoint is set,"
        " else tracing is off.",
    )
    otel_service_name: str | None = Field(
        None,
        validation_alias=AliasChoices("HEXMARKET_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"),
        description="`service.name` of the spans; unset: `hexmarket-<command>` (serve,"
        " relay-outbox, ...).",
    )

    # --- validation ----------------------------------------------------------------------------
    @field_validator(
        "postgres_url", "redis_url", "nats_url", "clickhouse_url", "otel_exporter_otlp_endpoint"
    )
    @classmethod
    def _known_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        schemes = _URL_SCHEMES[str(info.field_name)]
        if info.field_name == "postgres_url" and "=" in value and "://" not in value:
            return value  # libpq's key=value form ("host=db dbname=app user=app")
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server.strip()!r} is not host:port")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return level
