"""Raw HTTP/1.1 over asyncio streams, for clients no HTTP library would be: slow, silent or greedy ones.

And `bridge serve` as a process that needs no Kafka and no registry, for tests of the HTTP layer alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import free_port

REFUSED = re.compile(r'^bridge_connections_refused_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$', re.MULTILINE)


@dataclass(frozen=True)
class Process:
    """A running `bridge serve`: where it listens, its PID and its log file."""

    host: str
    port: int
    pid: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for PID {self.pid}")

    def log_text(self) -> str:
        return self.log.read_bytes().decode("utf-8", "replace")


@contextlib.contextmanager
def serve_without_kafka(
    folder: Path, sources_yaml: str, startup_timeout: float = 90, **server: object
) -> Iterator[Process]:
    """`bridge serve` on a broker that is not there and a mock:// registry: only its HTTP layer is of use.

    Yields once /healthz answers (/readyz never will); stops the process by PID.
    """
    port = free_port()
    extra = "".join(f"\n  {key}: {value}" for key, value in server.items())
    config = folder / "bridge.yaml"
    config.write_text(
        f"""
kafka: {{bootstrap_servers: "127.0.0.1:1"}}
schema_registry: {{url: "mock://{folder.name}"}}
topics: {{create: false}}
server:
  host: 127.0.0.1
  port: {port}{extra}
sources:
{sources_yaml}
""",
        encoding="utf-8",
    )
    log = folder / "bridge.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"],
            env=dict(os.environ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy("127.0.0.1", port, startup_timeout, process)
        yield Process("127.0.0.1", port, process.pid, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_healthy(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bridge serve exited with {process.returncode} before /healthz answered")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            sock.settimeout(2)
            if sock.recv(64).startswith(b"HTTP/1.1 200 "):
                return
        time.sleep(0.2)
    raise TimeoutError(f"/healthz on port {port} did not answer within {timeout} s")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: test",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One response with a Content-Length (every answer of the bridge and of its server has one)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Response(int(status_line.split(" ", 2)[1]), headers, body)


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, float]:
    """What the server still sends, and the seconds until it closed the connection (a reset counts).

    Raises TimeoutError if it is still open after `timeout`.
    """
    started = time.monotonic()
    received = bytearray()

    async def drain() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    await asyncio.wait_for(drain(), timeout)
    return bytes(received), time.monotonic() - started


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def parse_refused(metrics: str) -> dict[str, float]:
    """bridge_connections_refused_total by reason, from a /metrics page."""
    return {reason: float(value) for reason, value in REFUSED.findall(metrics)}
