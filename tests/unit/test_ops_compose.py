"""docker-compose.yml is valid by the compose-spec schema (no Docker engine runs here) and is
wired to what the code reads: real settings variables, real CLI commands, health checks."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from entrypoints import settings_doc
from entrypoints.cli import main
from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVERS = {"postgres", "redis", "nats", "kafka", "clickhouse"}
MONITORING = {"prometheus", "grafana"}
TRACING = {"jaeger"}
PROCESSES = {
    "api": "serve",
    "orders-consumer": "consume-orders",
    "outbox-relay": "relay-outbox",
    "log-writer": "write-logs",
    "migrate": "migrate",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    loaded: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = _schema()
    validator_class = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = {**compose, "services": {**compose["services"], "api": {"imagee": "typo"}}}
    schema = _schema()
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_every_server_and_process_is_there_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVERS | set(PROCESSES) | MONITORING | TRACING
    for name in SERVERS | MONITORING | {"orders-consumer", "outbox-relay", "log-writer"}:
        assert "healthcheck" in services[name], name
    # the api's health check is the image's HEALTHCHECK on /ready
    assert "/ready" in (ROOT / "Dockerfile").read_text()


def test_processes_run_real_cli_commands_from_the_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for service, command in PROCESSES.items():
        spec = services[service]
        assert spec["build"] == ".", service
        assert spec["command"] == [command], service
        assert command in main.commands, command  # type: ignore[attr-defined]


def test_processes_start_after_migrate_and_healthy_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for service in ("api", "orders-consumer", "outbox-relay", "log-writer"):
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        for server in SERVERS:
            assert depends[server]["condition"] == "service_healthy", (service, server)


def test_environment_names_real_settings(compose: dict[str, Any]) -> None:
    known = {
        env
        for name, field in Settings.model_fields.items()
        for env in settings_doc.env_names(name, field)
    }
    for service in PROCESSES:
        env = compose["services"][service]["environment"]
        for variable in env:
            assert variable in known, (service, variable)
        for required in (
            "HEXMARKET_POSTGRES_URL",
            "HEXMARKET_REDIS_URL",
            "HEXMARKET_NATS_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "HEXMARKET_CLICKHOUSE_URL",
        ):
            assert required in env, (service, required)
    # and the values pass the settings' own validation
    env = compose["services"]["api"]["environment"]
    values = {k: v for k, v in env.items() if not str(v).startswith("${")}
    Settings.model_validate(
        {
            k.removeprefix("HEXMARKET_").lower(): v
            for k, v in values.items()
            if k.startswith("HEXMARKET_")
        }
    )


def test_prometheus_and_grafana_are_provisioned_from_deploy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in services[name]["volumes"]}
        for name in MONITORING
    }
    assert mounts["prometheus"]["./deploy/prometheus"] == "/etc/prometheus"
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["grafana"]["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    for source in (*mounts["prometheus"], *mounts["grafana"]):
        if source.startswith("./"):
            assert (ROOT / source).is_dir(), source
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target.split(":")[0]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"api", "orders-consumer", "outbox-relay", "log-writer"}
    for service in ("orders-consumer", "outbox-relay", "log-writer"):
        assert services[service]["environment"]["HEXMARKET_METRICS_PORT"] == "9100"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/hexmarket.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_process_sends_its_spans_to_jaeger(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "16686:16686" in services["jaeger"]["ports"]  # the UI
    for service in PROCESSES:
        endpoint = services[service]["environment"]["HEXMARKET_OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint.endswith("-http://jaeger:4318}"), service  # OTLP/HTTP, overridable
