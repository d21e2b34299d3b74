"""A three-broker KRaft cluster for failure tests: `STACK_NODES=3 deploy/local/stack.sh up` on free ports.

Three combined broker+controller JVMs (node ids 1-3, a three-voter quorum, replication factor 3,
min.insync.replicas=2) and one registry, in a temporary state folder, stopped by PID at the end.
`Cluster.kill(node)` sends SIGKILL to a node's JVM; `Cluster.start()` runs `stack.sh up` again,
which starts every node that is not running and waits until it has joined.

    cluster = cluster_fixture()  # in a test module: a module-scoped `cluster` fixture
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.support.stack import STACK, Stack, free_port, interrupt_on_sigterm

NODES = (1, 2, 3)
UP_TIMEOUT_SECONDS = 120


def alive(pid: int) -> bool:
    """Whether `pid` runs. A kill -9'd JVM is not our child, and where PID 1 does not reap orphans it
    stays a zombie, which `kill -0` still finds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to kill -0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(") ", 1)[1].split(" ", 1)[0] != "Z"


@dataclass
class Cluster:
    """The running cluster: its ports, PIDs (from stack.sh's PID files) and failure controls."""

    state: Path
    env: dict[str, str]
    kafka_ports: dict[int, int]  # node id -> PLAINTEXT port on 127.0.0.1
    registry_url: str
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        # librdkafka's lines (connection refused to a killed node, mostly) through logging, not stderr.
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "logger": logging.getLogger(__name__)}
        self.admin = AdminClient(config)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports.values())

    @property
    def stack(self) -> Stack:
        """For start_bridge and the readers: every broker as bootstrap, the cluster's registry."""
        return Stack(self.bootstrap_servers, self.registry_url, None, self.registry_pid)

    @property
    def registry_pid(self) -> int:
        return int((self.state / "registry.pid").read_text())

    def pid(self, node: int) -> int:
        return int((self.state / f"kafka-{node}.pid").read_text())

    def pids(self) -> dict[int, int]:
        """Node id -> the PID of its JVM (the latest one, after a restart)."""
        return {node: self.pid(node) for node in NODES}

    def running(self, node: int) -> bool:
        return alive(self.pid(node))

    def kill(self, *nodes: int) -> float:
        """SIGKILL the nodes' JVMs (no shutdown hook, no flush); return once they are gone, with the
        monotonic time the signals were sent."""
        pids = [self.pid(node) for node in nodes]
        killed_at = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"PIDs {pids} still run 10 s after SIGKILL")
            time.sleep(0.05)
        return killed_at

    def start(self) -> float:
        """`stack.sh up`: start every node that is not running and wait until each has started (it
        is then registered and unfenced). Return the seconds it took."""
        started = time.monotonic()
        up = subprocess.run(
            [str(STACK), "up"], env=self.env, capture_output=True, text=True, timeout=UP_TIMEOUT_SECONDS
        )
        if up.returncode != 0:
            raise RuntimeError(f"stack.sh up failed:\n{up.stderr}")
        return time.monotonic() - started

    def restart(self, *nodes: int) -> float:
        """Start the given (killed) nodes again; the others must be running."""
        down = sorted(node for node in NODES if not self.running(node))
        if down != sorted(nodes):
            raise AssertionError(f"nodes {down} are down, expected exactly {sorted(nodes)}")
        return self.start()

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id that leads `topic`'s partition now (-1 while there is none)."""
        metadata = self.admin.list_topics(topic, timeout=10)
        return int(metadata.topics[topic].partitions[partition].leader)

    def in_sync(self, topics: Iterable[str]) -> bool:
        """Whether every partition of `topics` has a leader and all its replicas in sync."""
        metadata = self.admin.list_topics(timeout=10)
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                return False
            for partition in described.partitions.values():
                if partition.leader < 0 or sorted(partition.isrs) != sorted(partition.replicas):
                    return False
        return True

    def wait_in_sync(self, topics: Iterable[str], timeout: float = 60) -> float:
        """Wait until `topics` are fully replicated again (after a restart); return the seconds waited."""
        topics = list(topics)
        started = time.monotonic()
        while True:
            try:
                if self.in_sync(topics):
                    return time.monotonic() - started
            except Exception:  # noqa: BLE001 - a broker still starting: ask again
                pass
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{topics} not fully in sync within {timeout} s")
            time.sleep(0.25)

    def log(self, node: int) -> str:
        """A node's current log and the one before its last restart, for failure messages."""
        parts = [self.state / f"kafka-{node}.log.1", self.state / f"kafka-{node}.log"]
        return "\n".join(path.read_text(errors="replace") for path in parts if path.exists())


def start_cluster(state: Path) -> Iterator[Cluster]:
    """Start the cluster profile on free ports in `state`; stop it by PID (`stack.sh down`) at the end."""
    kafka_ports = {node: free_port() for node in NODES}
    controller_ports = [free_port() for _ in NODES]
    registry_port = free_port()
    env = {
        **os.environ,
        "STACK_NODES": "3",
        "STACK_STATE_DIR": str(state),
        "STACK_KAFKA_PORTS": ",".join(map(str, kafka_ports.values())),
        "STACK_CONTROLLER_PORTS": ",".join(map(str, controller_ports)),
        "STACK_REGISTRY_PORT": str(registry_port),
        "STACK_REGISTRY_MANAGEMENT_PORT": str(free_port()),
    }
    cluster = Cluster(state, env, kafka_ports, f"http://127.0.0.1:{registry_port}/apis/ccompat/v7")
    try:
        try:
            cluster.start()
        except RuntimeError as error:
            pytest.fail(str(error))
        yield cluster
    finally:
        subprocess.run([str(STACK), "down"], env=env, capture_output=True, timeout=120)


def cluster_fixture(scope: Any = "module") -> Callable[..., Any]:
    """A pytest fixture named after the variable it is assigned to: a `Cluster` for the whole `scope`."""

    @pytest.fixture(scope=scope)
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        interrupt_on_sigterm()
        yield from start_cluster(tmp_path_factory.mktemp("cluster"))

    return cluster
