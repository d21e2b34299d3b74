"""The bridge's own CPU per delivery, in-process, with no HTTP server and no Kafka.

- pipeline: `Pipeline.process` (verify, normalise, dedupe, encode, build records) over a publisher that
  acknowledges at once, built from the same parts, in the same way, as bridge/app.py builds it;
- app: the whole ASGI app from `create_app` (Starlette routing, the webhook handler, middleware, the
  pipeline) called directly with ASGI messages: the bridge's cost per delivery less the HTTP server's.

Each is measured on its own and reported as "not available" if the bridge's API moved under it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.load import SECRET, SOURCE
from bridge.providers.lettermint import LettermintSender, signature_headers

CONFIG = """
kafka: {{bootstrap_servers: "{bootstrap}"}}
schema_registry: {{url: "{registry}"}}
topics: {{prefix: "{prefix}"}}
server: {{port: {port}}}
sources: [{{name: bench, provider: lettermint, secrets: ["${{BENCH_SECRET}}"]}}]
"""
SECRET_ENV = "BENCH_SECRET"
WARM_UP = 200

Message = MutableMapping[str, Any]


class Acknowledged:
    """A publisher whose every record is acknowledged at once: the pipeline's own cost, without Kafka."""

    fatal = None
    queued = 0

    async def publish(self, records: Sequence[object]) -> None:
        return None

    async def ready(self) -> bool:
        return True

    def problems(self) -> list[str]:
        return []

    async def __aenter__(self) -> Acknowledged:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def bodies(count: int) -> list[bytes]:
    now = datetime.now(UTC)
    sender = LettermintSender()
    return [sender.example("message.delivered", now) for _ in range(count)]


def _settings() -> Any:
    from bridge.config import parse

    text = CONFIG.format(bootstrap="127.0.0.1:1", registry="mock://bench", port=1, prefix="bench-cpu")
    return parse(text, {SECRET_ENV: SECRET})


def _mock_registry() -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    client: Any = SchemaRegistryClient.new_client({"url": "mock://bench"})
    client.set_compatibility = lambda subject_name=None, level=None: level  # the mock lacks it
    return client


def pipeline_cpu(payloads: Sequence[bytes], warm_up: int = 0) -> float:
    """Seconds of CPU (process time) per delivery through `Pipeline.process`, the first `warm_up`
    of `payloads` (Lettermint bodies, each with a fresh event id) unmeasured."""
    from bridge.app import max_record_bytes
    from bridge.avro import Encoder, load_schemas
    from bridge.dedupe import RecentDeliveries
    from bridge.events import Delivery
    from bridge.headers import Headers
    from bridge.metrics import Metrics
    from bridge.pipeline import Pipeline, Published
    from bridge.providers import build as build_providers
    from bridge.routes import Routes

    settings = _settings()
    encoder = Encoder(_mock_registry(), load_schemas(), settings.topics.prefix)
    encoder.register()
    recent = RecentDeliveries(settings.server.dedupe_seconds, settings.server.dedupe_max_entries)
    pipeline = Pipeline(encoder, Acknowledged(), Metrics(), settings.topics.prefix, max_record_bytes(settings), recent)
    route = Routes(settings.sources, build_providers())[SOURCE]
    received = datetime.now(UTC)
    deliveries = [
        Delivery(
            source=SOURCE,
            provider="lettermint",
            headers=Headers(signature_headers(body, SECRET, received.timestamp())),
            body=body,
            received_at=received,
        )
        for body in payloads
    ]

    async def process_all() -> float:
        for delivery in deliveries[:warm_up]:
            await pipeline.process(route, delivery)
        started = time.process_time()
        for delivery in deliveries[warm_up:]:
            outcome = await pipeline.process(route, delivery)
            if not isinstance(outcome, Published):
                raise RuntimeError(f"the pipeline answered {outcome!r}")
        return time.process_time() - started

    return asyncio.run(process_all()) / max(1, len(deliveries) - warm_up)


def app_cpu(payloads: Sequence[bytes], warm_up: int = 0) -> float:
    """Seconds of CPU (process time) per delivery through the ASGI app of `create_app`, no server."""
    from bridge.app import create_app

    app = create_app(_settings(), publisher=Acknowledged(), client=_mock_registry())
    now = time.time()
    requests = []
    for body in payloads:
        headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
        headers += [
            (name.lower().encode(), value.encode()) for name, value in signature_headers(body, SECRET, now).items()
        ]
        requests.append((headers, body))

    async def call(path: str, method: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0

        async def receive() -> Message:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        await app(scope, receive, send)
        return status

    async def run() -> float:
        async with Lifespan(app):
            for _ in range(200):  # schemas register in the background; /readyz says when
                if await call("/readyz", "GET", [], b"") == 200:
                    break
                await asyncio.sleep(0.05)
            path = f"/webhooks/{SOURCE}"
            for headers, body in requests[:warm_up]:
                await call(path, "POST", headers, body)
            started = time.process_time()
            for headers, body in requests[warm_up:]:
                status = await call(path, "POST", headers, body)
                if status != 200:
                    raise RuntimeError(f"the app answered {status}")
            return time.process_time() - started

    return asyncio.run(run()) / max(1, len(requests) - warm_up)


class Lifespan:
    """The ASGI lifespan protocol around `app`: startup on enter, shutdown on exit."""

    def __init__(self, app: Callable[[Message, Any, Any], Awaitable[None]]) -> None:
        self._app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

        async def serve() -> None:
            await self._app(scope, self._to_app.get, self._from_app.put)

        self._task = asyncio.create_task(serve())
        await self._to_app.put({"type": "lifespan.startup"})
        reply = await self._from_app.get()
        if reply["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app's startup failed: {reply}")

    async def __aexit__(self, *exc_info: object) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        if self._task is not None:
            await self._task


def measure(count: int) -> dict[str, float | str]:
    """µs of CPU per delivery for each in-process measurement, or why it is not available."""
    results: dict[str, float | str] = {}
    for name, function in (("pipeline", pipeline_cpu), ("app", app_cpu)):
        try:
            results[name] = function(bodies(count + WARM_UP), WARM_UP) * 1e6
        except Exception as error:  # noqa: BLE001 - the bridge's API moved: say so, measure the rest
            results[name] = f"not available: {type(error).__name__}: {error}"
    return results
