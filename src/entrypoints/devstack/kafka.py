"""``kafka``: Apache Kafka in KRaft mode (one combined broker + controller) from the jars that
``mvn dependency:copy-dependencies`` resolves from ``kafka/pom.xml`` into ``.cache/kafka-jars``
(``HEXMARKET_KAFKA_JARS`` overrides the directory), on the local Java 17+. Here: the broker's
configuration, the one-time storage format, and the Maven resolve of the jars."""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Final

from entrypoints.devstack.process import (
    Server,
    ServerStartError,
    ServerUnavailableError,
    find_executable,
    port_open,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
KAFKA_POM: Final = REPO_ROOT / "kafka" / "pom.xml"
DEFAULT_KAFKA_JARS: Final = REPO_ROOT / ".cache" / "kafka-jars"
#: Written into the jar directory after a complete ``mvn`` resolve (the Makefile writes it too).
KAFKA_JARS_STAMP: Final = ".resolved"


class Kafka(Server):
    name = "kafka"
    start_timeout = 120.0
    stop_timeout = 30.0

    def __init__(self, home: Path, jars: Path) -> None:
        super().__init__(home)
        self.controller_port = self._port("controller_port")
        self.jars = jars
        self.data = home / "data"
        # stdout/stderr and log4j append to the same file, so a failure shows both
        self.log_path = home / "kafka.log"

    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def prepare(self) -> None:
        ensure_kafka_jars(self.jars, self.home / "mvn.log")
        props = self.home / "server.properties"
        props.write_text(
            "\n".join(
                f"{key}={value}"
                for key, value in {
                    "process.roles": "broker,controller",
                    "node.id": "1",
                    "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
                    "listeners": (
                        f"PLAINTEXT://127.0.0.1:{self.port},"
                        f"CONTROLLER://127.0.0.1:{self.controller_port}"
                    ),
                    "advertised.listeners": (
                        f"PLAINTEXT://127.0.0.1:{self.port},"
                        f"CONTROLLER://127.0.0.1:{self.controller_port}"
                    ),
                    "controller.listener.names": "CONTROLLER",
                    "inter.broker.listener.name": "PLAINTEXT",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "log.dirs": str(self.data),
                    "num.partitions": "3",
                    "auto.create.topics.enable": "true",
                    "offsets.topic.replication.factor": "1",
                    "offsets.topic.num.partitions": "10",
                    "transaction.state.log.replication.factor": "1",
                    "transaction.state.log.min.isr": "1",
                    "transaction.state.log.num.partitions": "4",
                    "share.coordinator.state.topic.replication.factor": "1",
                    "share.coordinator.state.topic.min.isr": "1",
                    "group.initial.rebalance.delay.ms": "0",
                    "num.network.threads": "2",
                    "num.io.threads": "4",
                    "log.retention.hours": "24",
                }.items()
            )
            + "\n"
        )
        log4j = self.home / "log4j2.properties"
        log4j.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_path}\n"
            "appender.file.append = true\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "logger.state.name = state.change.logger\n"
            "logger.state.level = WARN\n"
        )
        if (self.data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        argv = [
            java(),
            "-cp",
            f"{self.jars}/*",
            *self._jvm_flags(),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",  # one argument: an id may start with "-"
            "-c",
            str(props),
            "--standalone",
        ]
        self.run_once(argv, self.home / "format.log", "storage format")

    def _jvm_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-Djava.awt.headless=true",
        ]

    def command(self) -> list[str]:
        return [
            java(),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            *self._jvm_flags(),
            "-cp",
            f"{self.jars}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]

    def ready(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            return False
        # deferred: librdkafka loads only when a Kafka broker is started
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.url(), "log_level": 0})
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)


def java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidates = [Path(java_home) / "bin" / "java"] if java_home else []
    found = find_executable("java", *candidates)
    if found is None:
        raise ServerUnavailableError("kafka", "no java on PATH (Java 17+ is needed)", None)
    return found


def ensure_kafka_jars(jars: Path, log_path: Path) -> None:
    """Resolve the broker's jars with Maven unless a complete resolve is already there."""
    stamp = jars / KAFKA_JARS_STAMP
    if stamp.exists() and (
        not KAFKA_POM.exists() or stamp.stat().st_mtime >= KAFKA_POM.stat().st_mtime
    ):
        return
    if not KAFKA_POM.exists():
        raise ServerUnavailableError("kafka", f"no jars in {jars} and no {KAFKA_POM}", None)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerUnavailableError("kafka", f"no jars in {jars} and no mvn on PATH", None)
    jars.mkdir(parents=True, exist_ok=True)
    with (jars.parent / f".{jars.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one resolve at a time across processes
        if stamp.exists() and stamp.stat().st_mtime >= KAFKA_POM.stat().st_mtime:
            return
        for old in jars.glob("*.jar"):  # a changed pom must not leave two versions on the path
            old.unlink()
        with log_path.open("wb") as log:
            code = subprocess.call(  # noqa: S603 - fixed argv
                [
                    mvn,
                    "-q",
                    "-B",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={jars.resolve()}",
                    "-DincludeScope=runtime",
                    "-f",
                    str(KAFKA_POM),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if code != 0:
            raise ServerStartError("kafka", f"mvn exited with code {code}", log_path)
        stamp.touch()
