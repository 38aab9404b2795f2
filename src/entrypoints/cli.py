"""The ``hexmarket`` console script."""

from __future__ import annotations

import asyncio

import click

from entrypoints.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """hexmarket: goods catalog with an audit trail, and order ingest."""


@main.command()
def migrate() -> None:
    """Apply pending PostgreSQL migrations."""
    from adapters.postgres.migrate import migrate as run

    settings = Settings()
    if not settings.postgres_url:
        raise click.ClickException("HEXMARKET_POSTGRES_URL is not set")
    applied = asyncio.run(run(settings.postgres_url))
    click.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
