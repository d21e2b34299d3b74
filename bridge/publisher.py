"""Publisher: owns the Kafka producer; `publish` returns only once the broker acknowledged.

Every publisher is an async context manager, entered and left by the app's lifespan: a wrapper
(dedupe, spool) enters the publisher it wraps, so no lifecycle is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bridge.errors import PublishFailed
from bridge.records import Record

log = logging.getLogger(__name__)

# The delivery guarantee, not configurable: every in-sync replica has the record, and a retried
# produce cannot duplicate or reorder it within a partition.
GUARANTEE = {"acks": "all", "enable.idempotence": True}
POLL_SECONDS = 0.1


class Publisher(Protocol):
    async def __aenter__(self) -> Self:
        """Start: connect, create topics, whatever the publisher needs before `publish`."""

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Stop: flush what is in flight, within the shutdown time."""

    async def publish(self, records: Sequence[Record]) -> None:
        """Return once every record is acknowledged; raise PublishFailed otherwise."""

    async def ready(self) -> bool:
        """Whether the broker answers."""

    @property
    def fatal(self) -> str | None:
        """Why the producer can never publish again (librdkafka's fatal errors), else None."""


@dataclass(frozen=True)
class TopicPlan:
    """Topics to create at start-up where missing (-1: the broker's defaults)."""

    topics: Sequence[str]
    partitions: int = -1
    replication_factor: int = -1


class KafkaPublisher:
    """A confluent-kafka Producer whose delivery reports resolve asyncio futures.

    A thread polls the producer, so delivery callbacks run off the event loop; each hands its
    result to the loop with call_soon_threadsafe.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        extra: dict[str, Any],
        timeout: float,
        shutdown_timeout: float = 20.0,
        topics: TopicPlan | None = None,
    ) -> None:
        self._timeout = timeout
        self._shutdown_timeout = shutdown_timeout
        self._topics = topics
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

    async def __aenter__(self) -> Self:
        self._poller.start()
        if self._topics is not None:
            await asyncio.to_thread(self._ensure_topics, self._topics)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        remaining = await asyncio.to_thread(self.close, self._shutdown_timeout)
        if remaining:
            log.error("shutdown: %d records were not acknowledged; their deliveries got 503", remaining)

    def _ensure_topics(self, plan: TopicPlan) -> None:
        try:
            self.create_topics(plan.topics, plan.partitions, plan.replication_factor)
        except Exception as error:  # noqa: BLE001 - start anyway; /readyz and publish errors say the rest
            log.warning("creating topics failed (%s); relying on existing or auto-created topics", error)

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
