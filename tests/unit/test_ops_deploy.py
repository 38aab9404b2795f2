"""deploy/: every metric a Grafana panel or a Prometheus rule queries is one the application
exports (the one registry of the API and the workers), so a renamed metric cannot leave a
dashboard or an alert silently empty. The PromQL is parsed (promql-parser), not grepped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from entrypoints import metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: what Prometheus itself records about each scrape
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum", ""),
    "gauge": ("",),
    "info": ("_info",),
}


def exported() -> set[str]:
    """Every series name the registry exposes, whether or not a labelled child exists yet."""
    names: set[str] = set()
    for family in metrics.REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def selected(expr: Any) -> Iterator[str]:
    """The metric names an expression selects."""
    if isinstance(expr, promql_parser.VectorSelector):
        name = expr.name
        assert name, f"a selector without a metric name: {expr}"
        yield name
    elif isinstance(expr, promql_parser.MatrixSelector):
        yield from selected(expr.vector_selector)
    elif isinstance(expr, promql_parser.BinaryExpr):
        yield from selected(expr.lhs)
        yield from selected(expr.rhs)
    elif isinstance(expr, promql_parser.Call):
        for arg in expr.args:
            yield from selected(arg)
    elif isinstance(expr, promql_parser.AggregateExpr):
        yield from selected(expr.expr)
        if expr.param is not None:
            yield from selected(expr.param)
    elif isinstance(
        expr, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        yield from selected(expr.expr)


def rule_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((DEPLOY / "grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
    return queries


QUERIES = rule_queries() + panel_queries()


def test_there_are_rules_and_panels_to_check() -> None:
    alerts = {name for name, _ in rule_queries()}
    assert {
        "HexmarketConsumerStuck",
        "HexmarketConsumerLagging",
        "HexmarketDeadLetterSpike",
        "HexmarketOutboxStale",
        "HexmarketHttp5xx",
        "HexmarketReadinessDown",
    } <= alerts
    assert len(panel_queries()) >= 10


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_queried_metric_is_exported(where: str, query: str) -> None:
    names = set(selected(promql_parser.parse(query)))
    assert names, query
    missing = names - exported() - PROMETHEUS_OWN
    assert not missing, f"{where} queries metrics the application does not export: {missing}"


def test_the_check_catches_a_metric_that_does_not_exist() -> None:
    query = "sum(rate(hexmarket_orders_dead_lettered_totl[5m])) > 0 and on () up == 0"
    names = set(selected(promql_parser.parse(query)))
    assert names == {"hexmarket_orders_dead_lettered_totl", "up"}
    assert names - exported() - PROMETHEUS_OWN == {"hexmarket_orders_dead_lettered_totl"}


def test_the_new_operator_metrics_are_on_the_dashboard() -> None:
    queried = {
        name for _, query in panel_queries() for name in selected(promql_parser.parse(query))
    }
    for name in (
        "hexmarket_consumer_lag",
        "hexmarket_orders_dead_lettered_total",
        "hexmarket_outbox_oldest_unsent_age_seconds",
        "hexmarket_retries_total",
        "hexmarket_cache_hits_total",
        "hexmarket_cache_misses_total",
        "hexmarket_cache_errors_total",
        "hexmarket_dependency_up",
    ):
        assert name in queried, name
