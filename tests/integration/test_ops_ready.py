"""/ready and the CLI's start-up checks against real servers, including outages."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from adapters.postgres.migrate import migrate
from entrypoints import probes
from entrypoints.container import Container
from entrypoints.devstack import DevStack, free_port
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support import answering, child_env, eventually

HEXMARKET = str(Path(sys.executable).with_name("hexmarket"))


async def ready_answers(client: AsyncTestClient[Any], status: int) -> Any:
    """``GET /ready``'s response once its status is ``status`` (within 30 s)."""

    async def answered() -> Any:
        response = await client.get("/ready")
        return response if response.status_code == status else None

    return await eventually(answered, within=30, what=f"GET /ready {status}", interval=0.1)


@contextmanager
def stopped(stack: DevStack, server: str, name: str) -> Iterator[None]:
    """The stack's own ``server`` (``name`` to people) stopped for the block, then started."""
    if stack.is_external(server):
        pytest.fail(f"this test stops {name}; it needs the stack's own server")
    stack.stop(server)
    try:
        yield
    finally:
        stack.start(server)


@pytest.fixture
async def client(pg_url: str, redis_url: str, nats_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        postgres_url=pg_url,
        redis_url=redis_url,
        nats_url=nats_url,
        orders_store="memory",
        log_store="memory",
    )
    app = create_app(Container(settings=settings))
    app.state.roles = probes.ALL_ROLES
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_ready_checks_every_server_and_names_the_one_down(
    client: AsyncTestClient[Any], stack: DevStack
) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "nats": "ok"},
    }
    with stopped(stack, "redis", "Redis"):
        body = (await ready_answers(client, 503)).json()
        assert body["code"] == 1
        assert set(body["details"]) == {"redis"}
        assert body["details"]["redis"].startswith("cannot reach Redis")
        assert (await client.get("/health")).status_code == 200  # liveness is not readiness
    await ready_answers(client, 200)


async def test_ready_reports_postgres_down(client: AsyncTestClient[Any], stack: DevStack) -> None:
    with stopped(stack, "postgres", "PostgreSQL"):
        assert set((await ready_answers(client, 503)).json()["details"]) == {"postgres"}


def test_migrate_command_applies_then_reports_none_pending(pg_url: str, tmp_path: Path) -> None:
    env = child_env(HEXMARKET_POSTGRES_URL=pg_url)
    first = subprocess.run(
        [HEXMARKET, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    assert "none pending" not in first.stdout
    second = subprocess.run(
        [HEXMARKET, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 0, second.stderr
    assert "none pending" in second.stdout


@pytest.fixture
def serve_process(
    pg_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    asyncio.run(migrate(pg_url))
    port = free_port()
    env = child_env(
        HEXMARKET_POSTGRES_URL=pg_url,
        HEXMARKET_REDIS_URL=redis_url,
        HEXMARKET_LOG_STORE="memory",
        HEXMARKET_HTTP_PORT=str(port),
        HEXMARKET_LOG_JSON="true",
    )
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [HEXMARKET, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_serve_answers_ready_and_stops_cleanly_on_sigterm(
    serve_process: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    proc, base = serve_process
    answering(f"{base}/ready", proc, tmp_path / "serve.log", within=60, interval=0.1)
    metrics = httpx.get(f"{base}/metrics", timeout=5)
    assert 'route="/ready"' in metrics.text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert lines
    import json

    for line in lines:
        json.loads(line)  # structured: one JSON object per line
