"""End-to-end throughput of the bridge, side by side with a bare producer on the same broker.

    make bench            # against the local stack (make stack-up), bounded: N requests, T seconds

Three measurements in one run, so the 2-core shared machine's noise hits them alike:
1. bare producer: confluent-kafka, acks=all + idempotence, awaiting every ack, same record size,
   same concurrency — the floor the broker sets;
2. the bridge: `bridge serve` as its own process, concurrent signed Lettermint POSTs over HTTP,
   each answered only after its ack;
3. the bridge's own CPU per delivery: its pipeline (verify, normalise, encode, build records) in-process,
   over a publisher that acknowledges at once.
The ratios are what to watch: bridge/bare for throughput, and the bridge's RSS after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.avro import Encoder, load_schemas
from bridge.config import parse
from bridge.events import Delivery
from bridge.headers import Headers
from bridge.metrics import Metrics
from bridge.pipeline import Pipeline, Published
from bridge.providers.lettermint import Lettermint, LettermintSender, signature_headers
from bridge.records import Record
from bridge.routes import Route

SECRET = "whsec_benchmark"


def bodies(count: int) -> list[bytes]:
    now = datetime.now(UTC)
    return [LettermintSender().example("message.delivered", now) for _ in range(count)]


async def bare_producer(bootstrap: str, payloads: list[bytes], concurrency: int, topic: str) -> list[float]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    stop = False

    def poll() -> None:
        while not stop:
            producer.poll(0.05)

    poller = loop.run_in_executor(None, poll)

    async def one(payload: bytes) -> None:
        async with gate:
            done = loop.create_future()
            started = time.perf_counter()
            producer.produce(
                topic, payload, on_delivery=lambda err, msg: loop.call_soon_threadsafe(done.set_result, err)
            )
            error = await done
            assert error is None, error
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(payload) for payload in payloads))
    stop = True
    await poller
    producer.flush(10)
    return latencies


async def bridge_http(port: int, payloads: list[bytes], concurrency: int, deadline: float) -> list[float]:
    """Keep-alive HTTP/1.1 over plain asyncio streams: a Python HTTP client (httpx) tops out near
    400 requests/s here and would measure itself, not the bridge."""
    latencies: list[float] = []
    queue = iter(payloads)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for payload in queue:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                writer.write(request(payload))
                status = await read_response(reader)
                assert status == 200, status
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies


def request(payload: bytes) -> bytes:
    headers = signature_headers(payload, SECRET, time.time())
    lines = ["POST /webhooks/bench HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return status


class Acknowledged:
    """A publisher whose every record is acknowledged at once: the pipeline's own cost, without Kafka."""

    fatal = None

    async def publish(self, records: Sequence[Record]) -> None:
        return None

    async def ready(self) -> bool:
        return True

    def problems(self) -> list[str]:
        return []

    async def __aenter__(self) -> Acknowledged:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def cpu_per_delivery(payloads: list[bytes]) -> float:
    config = CONFIG.format(bootstrap="127.0.0.1:1", registry="mock://bench", port=1, prefix="cpu")
    settings = parse(config, {"BENCH_SECRET": SECRET})
    client = SchemaRegistryClient.new_client({"url": "mock://bench"})
    client.set_compatibility = lambda subject_name=None, level=None: level  # the mock lacks it
    encoder = Encoder(client, load_schemas(), "bench")
    encoder.register()
    pipeline = Pipeline(encoder, Acknowledged(), Metrics(), "bench", max_record_bytes=10 * 1024 * 1024)
    route = Route.build(settings.sources[0], Lettermint())
    received = datetime.now(UTC)
    deliveries = [
        Delivery(
            "bench", "lettermint", Headers(signature_headers(payload, SECRET, received.timestamp())), payload, received
        )
        for payload in payloads
    ]

    async def process_all() -> float:
        started = time.perf_counter()
        for delivery in deliveries:
            outcome = await pipeline.process(route, delivery)
            assert isinstance(outcome, Published), outcome
        return time.perf_counter() - started

    return asyncio.run(process_all()) / len(deliveries)


CONFIG = """
kafka: {{bootstrap_servers: "{bootstrap}"}}
schema_registry: {{url: "{registry}"}}
topics: {{prefix: "bench-{prefix}"}}
server: {{port: {port}}}
sources: [{{name: bench, provider: lettermint, secrets: ["${{BENCH_SECRET}}"]}}]
"""


def serve(bootstrap: str, registry: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    config = folder / "bench.yaml"
    config.write_text(CONFIG.format(bootstrap=bootstrap, registry=registry, port=port, prefix=uuid.uuid4().hex[:6]))
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(config), "--log-level", "WARNING", "serve"],
        env={**os.environ, "BENCH_SECRET": SECRET},
    )
    for _ in range(120):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("the bridge did not become ready")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(name: str, latencies: list[float], seconds: float) -> tuple[float, str]:
    rate = len(latencies) / seconds
    cuts = statistics.quantiles(latencies, n=100)
    return (
        rate,
        f"{name:<16} {len(latencies):>6} {rate:>9.0f}/s"
        f"   p50 {cuts[49] * 1000:6.1f} ms   p99 {cuts[98] * 1000:6.1f} ms",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("BRIDGE_TEST_KAFKA", "127.0.0.1:9092"))
    parser.add_argument(
        "--registry", default=os.environ.get("BRIDGE_TEST_REGISTRY", "http://127.0.0.1:8081/apis/ccompat/v7")
    )
    parser.add_argument("--requests", type=int, default=3000, help="deliveries per measurement (bounded)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60, help="stop the HTTP load after this long")
    args = parser.parse_args()
    payloads = bodies(args.requests)

    with tempfile.TemporaryDirectory() as folder:
        port = 18000 + os.getpid() % 1000
        process = serve(args.bootstrap, args.registry, port, Path(folder))
        try:
            rss_idle = rss_mib(process.pid)
            bridge_http_warm = asyncio.run(bridge_http(port, payloads[:200], args.concurrency, time.monotonic() + 30))
            started = time.perf_counter()
            bridge = asyncio.run(bridge_http(port, payloads, args.concurrency, time.monotonic() + args.seconds))
            bridge_seconds = time.perf_counter() - started
            rss_loaded = rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)

    started = time.perf_counter()
    bare = asyncio.run(bare_producer(args.bootstrap, payloads, args.concurrency, f"bench-bare-{uuid.uuid4().hex[:6]}"))
    bare_seconds = time.perf_counter() - started
    cpu = cpu_per_delivery(payloads[:1000])

    bare_rate, bare_line = summary("bare producer", bare, bare_seconds)
    bridge_rate, bridge_line = summary("bridge (HTTP)", bridge, bridge_seconds)
    print(f"concurrency {args.concurrency}, record ~{len(payloads[0])} B, warm-up {len(bridge_http_warm)} requests")
    print(bare_line)
    print(bridge_line)
    print(f"ratio bridge/bare throughput: {bridge_rate / bare_rate:.2f}")
    print(f"bridge CPU per delivery (its pipeline, publisher acknowledging at once): {cpu * 1e6:.0f} µs")
    print(f"bridge RSS: {rss_idle:.0f} MiB idle, {rss_loaded:.0f} MiB after the load")


if __name__ == "__main__":
    main()
