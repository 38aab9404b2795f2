"""``make fuzz``: schemathesis against the live app on real servers.

Starts ``hexmarket dev`` (embedded PostgreSQL, Redis, NATS, the ClickHouse engine, every
worker) on a free port in a temporary work directory, with an API token so the token guard is
exercised too, waits for ``/ready``, then runs the pinned schemathesis over
``/schema/openapi.json`` with every check (response-schema conformance, negative and positive
data, stateful links, ...), every phase, a fixed seed and a fixed example budget. Exits with
schemathesis's code: 0 only for no failure. Extra arguments go to ``schemathesis run``.

    python -m tests.fuzz [--max-examples 50]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "fuzz-token"
SEED = "13"
MAX_EXAMPLES = "100"
START_TIMEOUT = 240.0
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"hexmarket dev exited with {server.returncode} during start-up")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"hexmarket dev was not ready within {START_TIMEOUT:.0f} s")


SAMPLE = Path(__file__).parent / "data" / "model.json"


def seed(base: str, log: Path) -> None:
    """Data the schema's examples name: goods 1..3 in project 1, and the sample order (sent
    through the dev stack's NATS as any producer would), so the examples and the fuzzing reach
    the handlers' logic, not only their 404s."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for name in ("Green tea", "Oolong", "Sencha"):
        created = httpx.post(f"{base}/good/create?projectId=1", json={"name": name}, headers=auth)
        created.raise_for_status()
    found = re.search(r"NATS\s+(nats://\S+)", log.read_text(errors="replace"))
    if found is None:
        raise SystemExit("the NATS URL is not in hexmarket dev's banner")
    asyncio.run(_publish(found.group(1), SAMPLE.read_bytes()))
    uid = json.loads(SAMPLE.read_bytes())["order_uid"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{base}/order/{uid}").status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the sample order was not ingested within 60 s")
        time.sleep(0.2)


async def _publish(url: str, payload: bytes) -> None:
    import nats

    client = await nats.connect(url)
    try:
        await client.jetstream().publish("orders", payload)
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="hexmarket-fuzz-") as data_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("HEXMARKET_") and key != "KAFKA_BOOTSTRAP_SERVERS"
        }
        env.update(
            HEXMARKET_DATA_DIR=data_dir,
            HEXMARKET_HTTP_PORT=str(port),
            HEXMARKET_API_TOKEN=TOKEN,
            HEXMARKET_LOG_LEVEL="WARNING",
        )
        log = Path(data_dir) / "dev.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(BIN / "hexmarket"), "dev"], env=env, cwd=data_dir, stdout=out, stderr=out
            )
            try:
                wait_ready(base, server)
                seed(base, log)
                command = [
                    str(BIN / "schemathesis"),
                    "--no-color",
                    "run",
                    f"{base}/schema/openapi.json",
                    "--checks",
                    "all",
                    "--seed",
                    SEED,
                    "--max-examples",
                    MAX_EXAMPLES,
                    "--header",
                    f"Authorization: Bearer {TOKEN}",
                    "--request-timeout",
                    "10",
                    *argv,
                ]
                print("+", " ".join(command), flush=True)
                code = subprocess.call(command, env=env, cwd=data_dir)  # its caches stay there
            finally:
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        if code != 0 or server.returncode not in (0, -signal.SIGINT):
            sys.stdout.write(log.read_text(errors="replace")[-20_000:])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
