"""Publisher: owns the Kafka producer; `publish` returns only once the broker acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bridge.errors import PublishFailed

log = logging.getLogger(__name__)

# The delivery guarantee, not configurable: every in-sync replica has the record, and a retried
# produce cannot duplicate or reorder it within a partition.
GUARANTEE = {"acks": "all", "enable.idempotence": True}
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, str | bytes | None]] = field(default_factory=list)


class Publisher(Protocol):
    async def publish(self, records: Sequence[Record]) -> None:
        """Return once every record is acknowledged; raise PublishFailed otherwise."""

    async def ready(self) -> bool:
        """Whether the broker answers."""

    @property
    def fatal(self) -> str | None:
        """Why the producer can never publish again (librdkafka's fatal errors), else None."""


class KafkaPublisher:
    """A confluent-kafka Producer whose delivery reports resolve asyncio futures.

    A thread polls the producer, so delivery callbacks run off the event loop; each hands its
    result to the loop with call_soon_threadsafe.
    """

    def __init__(self, bootstrap_servers: str, extra: dict[str, Any], timeout: float) -> None:
        self._timeout = timeout
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": 5,
            # librdkafka gives up on a record when we stop waiting for it, so a 503 rarely leaves
            # a record behind that lands later (a provider retry would then duplicate it).
            "message.timeout.ms": int(timeout * 1000),
            **extra,
            **GUARANTEE,
            "error_cb": self._on_error,
        }
        self._fatal: str | None = None
        self._producer = Producer(self._config)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)

    def start(self) -> None:
        self._poller.start()

    async def publish(self, records: Sequence[Record]) -> None:
        loop = asyncio.get_running_loop()
        futures = [self._produce(loop, record) for record in records]
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout)
        except TimeoutError:
            raise PublishFailed(f"Kafka did not acknowledge within {self._timeout:g} s") from None

    @property
    def fatal(self) -> str | None:
        return self._fatal

    def _on_error(self, error: KafkaError) -> None:
        # A fatal error (e.g. the idempotent producer lost its sequence) ends this producer for good:
        # /healthz then fails so the orchestrator restarts the process with a fresh one.
        if error.fatal():
            log.critical("Kafka producer fatal error: %s", error.str())
            self._fatal = error.str()

    async def ready(self) -> bool:
        if self._fatal is not None:
            return False
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, timeout=2)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def create_topics(self, topics: Sequence[str], partitions: int, replication_factor: int) -> None:
        """Create missing topics (broker defaults for -1); existing ones are left as they are."""
        admin = AdminClient(client_config(self._config))
        new = [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor) for topic in topics]
        for topic, future in admin.create_topics(new, request_timeout=15).items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                log.debug("topic %s exists", topic)

    def close(self, timeout: float) -> int:
        """Flush what is in flight; return how many records were still undelivered."""
        remaining = int(self._producer.flush(timeout))
        self._stop.set()
        self._poller.join(timeout=1)
        return remaining

    def _produce(self, loop: asyncio.AbstractEventLoop, record: Record) -> asyncio.Future[None]:
        future: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            # A report can outlive its loop (a test's asyncio.run); the poll thread must survive it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, error)

        try:
            self._producer.produce(
                record.topic, value=record.value, key=record.key, headers=record.headers, on_delivery=on_delivery
            )
        except BufferError:
            raise PublishFailed("the producer's local queue is full") from None
        except KafkaException as error:
            raise PublishFailed(f"produce to {record.topic} failed: {error}") from error
        return future

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(POLL_SECONDS)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():  # the request already gave up waiting
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(PublishFailed(f"Kafka refused the record: {error.str()}"))


_PRODUCER_ONLY_PREFIXES = (
    "linger",
    "message.timeout",
    "acks",
    "enable.idempotence",
    "compression",
    "batch",
    "queue.buffering",
)


def client_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings an admin client or consumer shares with the producer (address, TLS, SASL)."""
    return {key: value for key, value in config.items() if not key.startswith(_PRODUCER_ONLY_PREFIXES)}
