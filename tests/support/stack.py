"""The real stack for integration tests (a Kafka broker and a schema registry), bridges and readers on it.

Where they come from, in order:
1. BRIDGE_TEST_KAFKA and BRIDGE_TEST_REGISTRY name a running broker and a ccompat registry URL;
2. a Docker engine answers: testcontainers starts apache/kafka and apicurio-registry (not
   exercised on the project's own machines, which have no Docker engine);
3. otherwise deploy/local/stack.sh starts both from Maven Central jars on free ports, in a
   temporary state folder, and stops them by PID at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bridge.events import DEAD_LETTER
from bridge.reader import MissingTopic, records

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack.sh"
KAFKA_IMAGE = "apache/kafka:4.3.1"
REGISTRY_IMAGE = "apicurio/apicurio-registry:3.3.3"
SECRETS = ("whsec_integration-current", "whsec_integration-previous")


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    registry_url: str
    # The broker's PID where this session started it (the JVM path), for failure tests.
    kafka_pid: int | None = None
    registry_pid: int | None = None


@dataclass(frozen=True)
class Served:
    """A running `bridge serve`: its base URL, topic prefix and config file, and the stack behind it."""

    url: str
    prefix: str
    config: Path
    stack: Stack

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"


@dataclass(frozen=True)
class Bridge(Served):
    """A `bridge serve` with one source under test, and that source's secrets."""

    source: str
    secrets: tuple[str, ...]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def interrupt_on_sigterm() -> None:
    """A terminated test run (CI's time limit, `kill`) still stops what it started, by PID."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def jvm_stack(state: Path) -> Iterator[Stack]:
    ports = {name: free_port() for name in ("KAFKA", "CONTROLLER", "REGISTRY", "REGISTRY_MANAGEMENT")}
    env = {
        **os.environ,
        "STACK_STATE_DIR": str(state),
        **{f"STACK_{name}_PORT": str(port) for name, port in ports.items()},
    }
    try:
        started = subprocess.run([str(STACK), "up"], env=env, capture_output=True, text=True)
        if started.returncode != 0:
            pytest.fail(f"stack.sh up failed:\n{started.stderr}")
        kafka_pid = int((state / "kafka.pid").read_text())
        registry_pid = int((state / "registry.pid").read_text())
        registry = f"http://127.0.0.1:{ports['REGISTRY']}/apis/ccompat/v7"
        yield Stack(f"127.0.0.1:{ports['KAFKA']}", registry, kafka_pid, registry_pid)
    finally:
        subprocess.run([str(STACK), "down"], env=env, capture_output=True)


def containers() -> Iterator[Stack]:  # pragma: no cover - needs a Docker engine
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    )
    registry = (
        DockerContainer(REGISTRY_IMAGE)
        .with_exposed_ports(8080)
        .with_env("APICURIO_RULES_GLOBAL_COMPATIBILITY", "BACKWARD")
    )
    with kafka, registry:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        url = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}/apis/ccompat/v7"
        _wait_http(url + "/subjects", 120)
        yield Stack(f"127.0.0.1:{port}", url)


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.5)


@contextlib.contextmanager
def start_bridge(
    stack: Stack,
    folder: Path,
    sources_yaml: str,
    env: dict[str, str],
    *,
    prefix: str | None = None,
    topics: str = "",
    wait_for: str = "/readyz",
    **server: object,
) -> Iterator[tuple[str, str, Path]]:
    """`bridge serve` as a real process with the given `sources:` YAML, on a fresh topic prefix.

    `topics` adds keys to `topics:` (e.g. `create: false`). Yields (base URL, topic prefix, config
    path) once `wait_for` (a path on the port, or a whole URL) answers 2xx; stops the process by PID.
    """
    port = free_port()
    prefix = prefix or f"it-{uuid.uuid4().hex[:8]}"
    extra = "".join(f"\n  {key}: {value}" for key, value in server.items())
    config = folder / "bridge.yaml"
    config.write_text(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "{prefix}"{", " + topics if topics else ""}}}
server:
  port: {port}{extra}
sources:
{textwrap.indent(textwrap.dedent(sources_yaml).strip(), "  ")}
""",
        encoding="utf-8",
    )
    with (folder / "bridge.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(wait_for if "://" in wait_for else url + wait_for, 90, process)
            yield url, prefix, config
        finally:
            process.terminate()
            process.wait(timeout=30)


def post_to(served: Served, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST `body` to `source`'s webhook route, as the provider would."""
    return httpx.post(f"{served.url}/webhooks/{source}", content=body, headers=headers, timeout=35)


def post(bridge: Bridge, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return post_to(bridge, bridge.source, body, headers)


def read_topic(bootstrap_servers: str, topic: str) -> list[Message]:
    """Every record of `topic`, from the beginning up to its high watermark now; none if it does not exist."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"it-{uuid.uuid4()}"})
    try:
        return list(records(consumer, topic))
    except MissingTopic:
        return []
    finally:
        consumer.close()


def run_cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bridge --config <config> <args>`, with `env` over this process's environment."""
    command = [sys.executable, "-m", "bridge", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)


def sent_event_ids(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The event ids in the bridge's 200 answer that `send-test` prints."""
    return list(json.loads(result.stdout.split(" -> 200 ", 1)[1])["events"])


def records_with(stack_or_bootstrap: Stack | str, topic: str, event_id: str) -> list[Message]:
    """The records of `topic` whose event_id header is `event_id`."""
    bootstrap = stack_or_bootstrap if isinstance(stack_or_bootstrap, str) else stack_or_bootstrap.bootstrap_servers
    records = read_topic(bootstrap, topic)
    return [record for record in records if dict(record.headers() or []).get("event_id") == event_id.encode()]


def dead_letters(served: Served, body: bytes) -> list[Message]:
    """The records of the dead-letter topic that hold `body`, whole."""
    return [
        record
        for record in read_topic(served.stack.bootstrap_servers, served.topic(DEAD_LETTER))
        if record.value() == body
    ]


def decode(registry: SchemaRegistryClient, record: Message) -> dict[str, Any]:
    """A record's value through confluent-kafka's stock AvroDeserializer."""
    value = AvroDeserializer(registry)(record.value(), SerializationContext(record.topic() or "", MessageField.VALUE))
    assert isinstance(value, dict)
    return value


def create_too_small_topics(stack: Stack, prefix: str, event_type: str, max_message_bytes: int) -> None:
    """`<prefix>.<event_type>` taking no record above `max_message_bytes` (and the dead-letter topic as the
    broker makes it): a record above it fails for good, and with the gapless guarantee fails the producer."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from bridge.events import DEAD_LETTER

    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    topics = [
        NewTopic(f"{prefix}.{event_type}", 1, 1, config={"max.message.bytes": str(max_message_bytes)}),
        NewTopic(f"{prefix}.{DEAD_LETTER}", 1, 1),
    ]
    for future in admin.create_topics(topics, request_timeout=15).values():
        future.result()
