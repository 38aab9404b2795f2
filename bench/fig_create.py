"""``POST /good/create`` under 32 connections against the same SQL issued directly."""

from __future__ import annotations

from bench.context import Bench, NotAvailable
from bench.report import Figure


def good_create(bench: Bench) -> list[Figure]:
    raise NotAvailable("the catalog HTTP routes have not landed")
