"""`bridge serve --workers 2` as real processes on the real stack: both workers serve and publish, SIGTERM
drains them all and leaves nothing behind, a worker killed (or whose producer fails for good) is replaced,
and start-up failures exit before or instead of forking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bridge.cli import EXIT_CONFIG
from bridge.providers.lettermint import LettermintSender, signature_headers
from bridge.server import EXIT_STARTUP_FAILED
from tests.support.http import read_response, request
from tests.support.stack import Stack, create_too_small_topics, free_port, read_topic

pytestmark = pytest.mark.integration

SECRET = "whsec_workers"
SOURCE = "workers"
EVENT_TYPE = "message.delivered"
SENDER = LettermintSender()
WORKERS = 2
BUDGET = 5  # server.shutdown_timeout_seconds
START_TIMEOUT = 45
CONNECTIONS = 16  # keep-alive connections: all on one worker by chance is 2 in 2**16
NEW_CONNECTIONS = 8
SMALL_TOPIC_BYTES = 600  # below any Lettermint record: with the gapless guarantee, a fatal producer error


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    prefix: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def write_config(folder: Path, stack: Stack, port: int, prefix: str, kafka: str = "", topics: str = "") -> Path:
    config = folder / "bridge.yaml"
    config.write_text(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"{kafka}}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "{prefix}"{topics}}}
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout_seconds: {BUDGET}}}
sources:
  - {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}
""",
        encoding="utf-8",
    )
    return config


def command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--workers", str(WORKERS), *extra]


@contextlib.contextmanager
def serve_workers(stack: Stack, folder: Path, wait_for: str = "/readyz") -> Iterator[Served]:
    """`bridge serve --workers 2` on a fresh topic prefix, yielded once `wait_for` answers 200 and both workers
    said they serve; stopped in the end by PID (every worker too, should the supervisor be gone)."""
    port, prefix = free_port(), f"it-workers-{uuid.uuid4().hex[:8]}"
    path = write_config(folder, stack, port, prefix)
    log = folder / "bridge.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command(path), stdout=output, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", port, prefix, process, log)
    seen: set[int] = set()
    try:
        wait_until(lambda: answers(served, wait_for) and "all 2 workers serving" in served.log_text(), START_TIMEOUT)
        yield served
    finally:
        stop(process, seen | set(children(process.pid)))


def stop(process: subprocess.Popen[bytes], workers: set[int]) -> None:
    """The supervisor by SIGTERM (killed if it overruns), then any worker left behind, by PID."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=BUDGET + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for pid in workers:  # a worker left behind is a failure, but is stopped here
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def answers(served: Served, path: str, times: int = 8) -> bool:
    """`path` answers 200 `times` in a row, each on a new connection: whichever worker the kernel picks (each
    worker answers for itself, and registers the schemas for itself)."""
    assert served.process.poll() is None, f"bridge serve exited with {served.process.returncode}"
    try:
        return all(httpx.get(served.url + path, timeout=5).status_code == 200 for _ in range(times))
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what or condition}"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (from /proc: no psutil here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def with_config(path: str) -> list[int]:
    """Every live process whose command line names `path`: none may outlive the test's bridge."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if path.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


def signed() -> tuple[bytes, dict[str, str], str]:
    body = SENDER.example(EVENT_TYPE, datetime.now(UTC))
    return body, signature_headers(body, SECRET, time.time()), json.loads(body)["id"]


def post(url: str) -> tuple[str, httpx.Response]:
    """A delivery on a connection of its own."""
    body, headers, event_id = signed()
    return event_id, httpx.post(f"{url}/webhooks/{SOURCE}", content=body, headers=headers, timeout=30)


def owner(port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the server side of the connection from `client_port` to `port`."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == port and int(remote[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
    return None


def event_ids_on_topic(stack: Stack, prefix: str) -> list[str]:
    ids = []
    for message in read_topic(stack.bootstrap_servers, f"{prefix}.{EVENT_TYPE}"):
        event_id = dict(message.headers() or []).get("event_id")
        if isinstance(event_id, bytes):
            ids.append(event_id.decode())
    return ids


def test_two_workers_share_the_connections_and_publish_every_delivery(stack: Stack, tmp_path: Path) -> None:
    with serve_workers(stack, tmp_path) as served:
        workers = children(served.process.pid)
        assert len(workers) == WORKERS, workers
        assert all(alive(pid) for pid in workers)

        async def keep_alive() -> tuple[list[str], list[int | None]]:
            """CONNECTIONS connections, three deliveries on each, one after another."""
            opened = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(CONNECTIONS)]
            ids, owners = [], []
            try:
                for round_ in range(3):
                    for reader, writer in opened:
                        body, headers, event_id = signed()
                        writer.write(request("POST", f"/webhooks/{SOURCE}", headers, body))
                        response = await asyncio.wait_for(read_response(reader), 30)
                        assert response.status == 200, response.body
                        assert event_id in json.loads(response.body)["events"]
                        ids.append(event_id)
                        if round_ == 0:
                            owners.append(owner(served.port, writer.get_extra_info("sockname")[1], workers))
            finally:
                for _, writer in opened:
                    writer.close()
            return ids, owners

        ids, owners = asyncio.run(asyncio.wait_for(keep_alive(), 60))
        for _ in range(NEW_CONNECTIONS):
            event_id, response = post(served.url)
            assert response.status_code == 200, response.text
            ids.append(event_id)
        assert answers(served, "/readyz")

        assert None not in owners, owners
        assert set(owners) == set(workers), f"connections by worker: {[owners.count(pid) for pid in workers]}"
        on_topic = event_ids_on_topic(stack, served.prefix)
        assert sorted(on_topic) == sorted(ids)  # every 200'd delivery, once


def test_sigterm_drains_every_worker_exits_0_and_leaves_no_process(stack: Stack, tmp_path: Path) -> None:
    with serve_workers(stack, tmp_path) as served:
        workers = children(served.process.pid)
        assert len(workers) == WORKERS

        async def scenario() -> tuple[int, int | None, float]:
            # A request in progress across the signal, on whichever worker took its connection.
            body, headers, event_id = signed()
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            raw = request("POST", f"/webhooks/{SOURCE}", headers, body)
            writer.write(raw[: len(raw) - 100])
            await writer.drain()
            await asyncio.sleep(0.3)
            os.kill(served.process.pid, signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(1.0)
            with pytest.raises(ConnectionRefusedError):  # every worker closed its listener
                await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(raw[len(raw) - 100 :])
            response = await asyncio.wait_for(read_response(reader), 30)
            assert event_id in json.loads(response.body)["events"]
            writer.close()
            code = await asyncio.to_thread(served.process.wait, BUDGET + 10)
            return response.status, code, time.monotonic() - signalled

        status, code, took = asyncio.run(asyncio.wait_for(scenario(), 60))
        log = served.log_text()

    assert status == 200
    assert code == 0, log[-3000:]
    assert took < BUDGET + 3
    assert not any(alive(pid) for pid in workers), [pid for pid in workers if alive(pid)]
    assert with_config(str(tmp_path / "bridge.yaml")) == []
    for pid in workers:
        assert f"(pid {pid}) drained and exited" in log
    assert "every worker stopped (exit status 0)" in log


def test_a_worker_killed_is_replaced_and_the_service_keeps_answering(stack: Stack, tmp_path: Path) -> None:
    with serve_workers(stack, tmp_path) as served:
        workers = children(served.process.pid)
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        # Meanwhile the other worker answers: the victim's listener died with it, so no connection waits for it.
        ids = []
        for _ in range(6):
            event_id, response = post(served.url)
            assert response.status_code == 200, response.text
            ids.append(event_id)

        def replaced() -> bool:
            now = children(served.process.pid)
            return len(now) == WORKERS and victim not in now

        wait_until(replaced, 20, "a replacement worker")
        wait_until(lambda: served.log_text().count(" serving: pid ") == WORKERS + 1, 30, "the replacement serving")
        replacement = (set(children(served.process.pid)) - set(workers)).pop()
        # Serving is not ready: the replacement checks Kafka and its schemas first, as any start does.
        wait_until(lambda: answers(served, "/readyz"), 30, "the replacement ready")
        for _ in range(6):
            event_id, response = post(served.url)
            assert response.status_code == 200, response.text
            ids.append(event_id)
        log = served.log_text()
        assert f"(pid {victim}) was killed by SIGKILL" in log
        assert "starting another in 1 s" in log
        assert f"starting: pid {replacement}" in log
        assert sorted(event_ids_on_topic(stack, served.prefix)) == sorted(ids)
        assert served.process.poll() is None


def test_a_worker_whose_producer_fails_for_good_is_replaced(stack: Stack, tmp_path: Path) -> None:
    """The fatal error of tests/reliability/test_fatal.py: a worker's /healthz fails, it stops with status 4."""
    prefix = f"it-workers-{uuid.uuid4().hex[:8]}"
    create_too_small_topics(stack, prefix, EVENT_TYPE, SMALL_TOPIC_BYTES)
    port = free_port()
    gapless = ", producer: {enable.gapless.guarantee: true}"
    config = write_config(tmp_path, stack, port, prefix, kafka=gapless, topics=", create: false")
    log = tmp_path / "bridge.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command(config), stdout=output, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", port, prefix, process, log)
    workers: list[int] = []
    try:
        # /readyz stays 503 (the small topic is a problem it names): wait for the workers and the schemas.
        wait_until(lambda: answers(served, "/healthz") and "all 2 workers serving" in served.log_text(), START_TIMEOUT)
        wait_until(lambda: served.log_text().count("schemas registered") >= WORKERS, START_TIMEOUT)
        workers = children(process.pid)
        statuses = {post(served.url)[1].status_code for _ in range(6)}  # new connections: both workers get some
        assert statuses == {503}
        wait_until(lambda: "exited with status 4" in served.log_text(), 30, "a worker ending itself")
        wait_until(lambda: len(set(children(process.pid)) - set(workers)) >= 1, 20, "a replacement worker")
        text = served.log_text()
        assert "/healthz answered 503" in text
        assert "starting another in 1 s" in text
        assert process.poll() is None
    finally:
        stop(process, {*workers, *children(process.pid)})


def run_serve(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(config, *extra), capture_output=True, text=True, timeout=60)


def test_a_bad_configuration_exits_2_without_forking(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("kafka: {bootstrap_servers: x}\nschema_registry: {url: y}\nsources: []\nserver: {wrkers: 2}\n")
    result = run_serve(config)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "configuration error" in result.stderr
    assert "serving on" not in result.stderr and "starting: pid" not in result.stderr

    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_CONFIG
    assert "--workers" in result.stderr


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain listener", "SO_REUSEPORT listener"])
def test_a_port_taken_exits_3_without_forking(stack: Stack, tmp_path: Path, reuse_port: bool) -> None:
    """Taken by anything: also by SO_REUSEPORT sockets (another `--workers` bridge), which our own would join."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(write_config(tmp_path, stack, port, "it-workers-taken"))
    assert result.returncode == EXIT_STARTUP_FAILED, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "starting: pid" not in result.stderr
