"""The two reference targets of `python -m benchmarks`, each served as its own process.

    python -m benchmarks.servers ceiling --port P
    python -m benchmarks.servers producer --port P --bootstrap HOST:PORT --topic T

Both run on the bridge's server settings (uvicorn with uvloop and httptools, access log off) and answer
`POST /webhooks/{source}`; `GET /readyz` answers 200 once the target can take load.

- ceiling: bare Starlette that reads the body and answers 200 JSON: what HTTP alone costs here;
- producer: bare Starlette that reads the body, produces it as one record with confluent-kafka (acks=all,
  idempotence, the bridge's linger.ms), awaits its delivery report and only then answers 200: what
  HTTP plus an acknowledged Kafka write cost, with none of the bridge's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from confluent_kafka import KafkaError, Message, Producer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge import publisher

# As the bridge's producer (bridge/publisher.py): the guarantee, the linger, a bounded wait for an ack.
PRODUCER_CONFIG: dict[str, Any] = {"acks": "all", "enable.idempotence": True}
LINGER_MS = publisher.LINGER_MS  # the bridge's default; --linger-ms overrides it
MESSAGE_TIMEOUT_MS = 10_000
POLL_SECONDS = 0.1
# The record headers the bridge writes for a Lettermint delivery (bridge/records.py, event_record).
STATIC_HEADERS: list[tuple[str, str | bytes | None]] = [
    ("event_type", b"message.delivered"),
    ("provider", b"lettermint"),
    ("source", b"bench"),
]


async def readyz(request: Request) -> Response:
    return JSONResponse({"ready": True})


def ceiling() -> Starlette:
    async def receive(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/{source}", receive, methods=["POST"]), Route("/readyz", readyz)],
    )


def producer(bootstrap: str, topic: str, linger_ms: float = LINGER_MS) -> Starlette:
    kafka = Producer(
        {
            "bootstrap.servers": bootstrap,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            "linger.ms": linger_ms,
            **PRODUCER_CONFIG,
        },
    )
    stopping = threading.Event()

    def poll() -> None:
        # Delivery callbacks run here, off the event loop; each settles its request's one future.
        while not stopping.is_set():
            kafka.poll(POLL_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(kafka.list_topics, topic, 10)  # metadata before the first request
        poller = threading.Thread(target=poll, name="bench-producer-poll", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stopping.set()
            poller.join(5)
            kafka.flush(10)

    def settle(future: asyncio.Future[KafkaError | None], error: KafkaError | None) -> None:
        if not future.done():  # the client may have gone, and uvicorn cancelled the request
            future.set_result(error)

    async def receive(request: Request) -> Response:
        body = await request.body()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            loop.call_soon_threadsafe(settle, future, error)

        event_id = str(uuid.uuid4())
        headers: list[tuple[str, str | bytes | None]] = [
            ("event_id", event_id.encode()),
            *STATIC_HEADERS,
            ("attempt", b"1"),
            ("received_at", datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
        ]
        key = str(uuid.uuid4()).encode()  # the bridge keys by message id: a fresh one per delivery
        kafka.produce(topic, body, key=key, headers=headers, on_delivery=delivered)
        error = await future
        if error is not None:
            return JSONResponse({"error": "unavailable", "detail": str(error)}, status_code=503)
        return JSONResponse({"status": "published", "events": [event_id]})

    return Starlette(
        routes=[Route("/webhooks/{source}", receive, methods=["POST"]), Route("/readyz", readyz)],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers", description=__doc__)
    parser.add_argument("target", choices=["ceiling", "producer"])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (producer only)")
    parser.add_argument("--topic", help="the topic to produce to (producer only)")
    parser.add_argument(
        "--linger-ms", type=float, default=LINGER_MS, help=f"producer linger.ms (default: {LINGER_MS}, the bridge's)"
    )
    args = parser.parse_args(argv)
    if args.target == "producer":
        if not (args.bootstrap and args.topic):
            parser.error("producer needs --bootstrap and --topic")
        app = producer(args.bootstrap, args.topic, args.linger_ms)
    else:
        app = ceiling()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
