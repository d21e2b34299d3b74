"""Publisher: owns the Kafka producer; `publish` returns only once the broker acknowledged.

Every publisher is an async context manager, entered and left by the app's lifespan: a wrapper
(dedupe, spool) enters the publisher it wraps, so no lifecycle is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bridge import kafka_config
from bridge.errors import PublishFailed, RecordTooLarge
from bridge.logs import kafka_logger
from bridge.records import BATCH_OVERHEAD_BYTES, Record
from bridge.secrets import FileSecret
from bridge.topics import ADMIN_TIMEOUT_SECONDS, TopicSpec, TopicUnreadable, describe, new_topic

log = logging.getLogger(__name__)

# The delivery guarantee, not configurable: every in-sync replica has the record, and a retried
# produce cannot duplicate or reorder it within a partition.
GUARANTEE = {"acks": "all", "enable.idempotence": True}
POLL_SECONDS = 0.1
LINGER_MS = 1  # the default; kafka.producer may override it (see the comment where it is used)
# Errors that say a record is too large: they never pass, so they are not worth a retry.
TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_MSG_SIZE})
# Connection errors /readyz shows at most (the newest of each kind), until a metadata request succeeds again.
MAX_CONNECTION_PROBLEMS = 3
# librdkafka's statistics (broker RTT, queue, errors) for /metrics: a 4 KB JSON parse per interval on the poll
# thread. kafka.producer's statistics.interval.ms overrides it (0: off).
STATISTICS_INTERVAL_MS = 15_000
PRODUCER_STATISTICS = frozenset({"stats_cb", "statistics.interval.ms"})
# While a topic is missing or too small, /readyz looks again at most this often: `bridge topics apply` (or an
# operator) fixing it makes the bridge ready without a restart, and a topic just created that a broker did
# not know yet is found on the next look.
TOPIC_RECHECK_SECONDS = 2.0


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
        """Whether the broker answers and will take every record the bridge may write."""

    def problems(self) -> list[str]:
        """Why the publisher is not ready beyond the broker not answering (for /readyz), else []."""

    @property
    def fatal(self) -> str | None:
        """Why the producer can never publish again (librdkafka's fatal errors), else None."""

    @property
    def queued(self) -> int:
        """Records handed to the producer and not yet acknowledged or failed."""


@dataclass(frozen=True)
class TopicPlan:
    """The topics the bridge writes (bridge/topics.py), and the `max.message.bytes` each must allow.

    With `create`, missing topics are created as their spec says, and existing ones below that limit
    are raised to it. Without, a missing topic or one below it keeps the bridge not ready.
    """

    topics: Sequence[TopicSpec]
    max_message_bytes: int
    create: bool = True


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
        max_record_bytes: int | None = None,
        statistics: Callable[[str], None] | None = None,
    ) -> None:
        self._timeout = timeout
        self._shutdown_timeout = shutdown_timeout
        self._topics = topics
        self._problems: list[str] | None = None if topics is not None else []  # None: not checked yet
        self._topic_worker: threading.Thread | None = None
        self._topics_checked = 0.0  # monotonic time of the last check that got an answer
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            # Each request waits for its record's ack, so linger is latency on every request: 1 ms against 5
            # gave +15 % deliveries/s at 32 connections and -1 ms p50 (make bench); 0 sends more, smaller,
            # requests and lost throughput. Compression is off: ~1 KB records on a LAN gain nothing from it.
            "linger.ms": LINGER_MS,
            # librdkafka gives up on a record when we stop waiting for it, so a 503 rarely leaves
            # a record behind that lands later (a provider retry would then duplicate it).
            "message.timeout.ms": int(timeout * 1000),
            # Room for the largest record the bridge writes (config.py refuses a smaller override).
            **({"message.max.bytes": max_record_bytes + BATCH_OVERHEAD_BYTES} if max_record_bytes else {}),
            **({"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": statistics} if statistics else {}),
            **kafka_config.plain(extra),
            **GUARANTEE,
            "error_cb": self._on_error,
            "logger": kafka_logger(),  # librdkafka's own lines: through the bridge's handler, rate-limited
        }
        # A file-backed password (`${file:}`): the poll thread hands a changed one to the producer.
        password = extra.get("sasl.password")
        self._password = password if isinstance(password, FileSecret) else None
        # Why the broker is out of reach (authentication failed, certificate verify failed, ...), from error_cb.
        self._connection: dict[int, str] = {}
        self._fatal: str | None = None
        self._producer = Producer(self._config)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)

    async def __aenter__(self) -> Self:
        self._poller.start()
        if self._topics is not None:
            # Off the start-up path: with the broker down, admin calls wait out their timeout, and the
            # server must answer probes meanwhile. /readyz stays 503 until the topics are checked.
            self._start_topic_work(self._topics)
        return self

    def _start_topic_work(self, plan: TopicPlan) -> None:
        """Create (with `create`) and check the topics on a thread of their own; at start-up, and again while
        /readyz finds them wrong: a topic still missing is created again."""
        if self._topic_worker is None or not self._topic_worker.is_alive():
            self._topic_worker = threading.Thread(
                target=self._prepare_topics, args=(plan,), name="kafka-topics", daemon=True
            )
            self._topic_worker.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        remaining = await asyncio.to_thread(self.close, self._shutdown_timeout)
        if remaining:
            log.error("shutdown: %d records were not acknowledged; their deliveries got 503", remaining)

    def _prepare_topics(self, plan: TopicPlan) -> None:
        admin = AdminClient(client_config(self._config))
        if plan.create:
            try:
                self._create_topics(admin, plan)
            except Exception as error:  # noqa: BLE001 - start anyway; /readyz and publish errors say the rest
                log.warning("creating topics failed (%s); relying on existing or auto-created topics", error)
        self._check_topics(admin, plan)

    def _check_topics(self, admin: AdminClient, plan: TopicPlan) -> None:
        """Every topic must take the largest record the bridge writes; if the broker does not answer, check later."""
        names = [spec.name for spec in plan.topics]
        try:
            limits = {name: int(state.config["max.message.bytes"]) for name, state in describe(admin, names).items()}
            small = {topic: n for topic, n in limits.items() if n < plan.max_message_bytes}
            if small and plan.create:
                raise_limits(admin, list(small), plan.max_message_bytes)
                small = {}
        except (KafkaException, TopicUnreadable) as error:
            log.warning("checking the topics' max.message.bytes failed (%s); /readyz will retry", error)
            return
        missing = [name for name in names if name not in limits]
        problems = [
            f"topic {topic} has max.message.bytes={limit}, below the {plan.max_message_bytes} the bridge needs "
            "for records of server.max_body_bytes plus headers: raise the topic's limit or lower max_body_bytes"
            for topic, limit in sorted(small.items())
        ]
        if missing:
            problems.append(f"kafka: topics missing: {', '.join(missing)} (create them with `bridge topics apply`)")
        if problems != self._problems:  # a recheck finding the same says nothing new
            for problem in problems:
                log.error("not ready: %s", problem)
            if self._problems and not problems:
                log.info("topics: every topic exists and takes the largest record")
        self._topics_checked = time.monotonic()
        self._problems = problems

    async def publish(self, records: Sequence[Record]) -> None:
        loop = asyncio.get_running_loop()
        futures = [self._produce(loop, record) for record in records]
        # One record (the common case) is awaited as its own future: no gather, no wait_for, no task.
        waiting = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
        timer = loop.call_later(self._timeout, _give_up, waiting, self._timeout)
        try:
            await waiting
        finally:
            timer.cancel()

    @property
    def fatal(self) -> str | None:
        return self._fatal

    @property
    def queued(self) -> int:
        return len(self._producer)  # librdkafka's out-queue length: a lock-free read, safe from any thread

    def _on_error(self, error: KafkaError) -> None:
        # confluent-kafka raises fatal errors from poll() and flush() instead of calling error_cb (see
        # _poll); this covers a client that hands them here after all.
        if error.fatal():
            self._set_fatal(error)
            return
        # librdkafka repeats a connection error on every retry: said once, until the broker answers again.
        message = error.str()
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            # Alone it does not say why; a listener of another protocol just closes the connection.
            protocol = str(self._config.get("security.protocol", "PLAINTEXT")).upper()
            message += (
                f" ({self._config['bootstrap.servers']} with security.protocol={protocol}: the brokers are down, "
                "or that listener expects another protocol)"
            )
        if self._connection.get(error.code()) != message:
            log.error("Kafka: %s", message)
        connection = {**self._connection, error.code(): message}
        self._connection = dict(list(connection.items())[-MAX_CONNECTION_PROBLEMS:])

    def _set_fatal(self, error: KafkaError) -> None:
        """A fatal error (e.g. the idempotent producer lost its sequence) ends this producer for good:
        every produce fails from then on, and /healthz answers 503 so the orchestrator restarts the
        process with a fresh producer. The producer is not rebuilt in place."""
        if self._fatal is None:
            log.critical("Kafka producer fatal error: %s", error.str())
            self._fatal = error.str()

    async def ready(self) -> bool:
        if self._fatal is not None:
            return False
        if self._problems is None:
            if self._topics is not None:
                self._start_topic_work(self._topics)
            return False
        if self._problems:
            if self._topics is not None and time.monotonic() - self._topics_checked >= TOPIC_RECHECK_SECONDS:
                self._start_topic_work(self._topics)
            return False
        try:
            metadata = await asyncio.to_thread(self._producer.list_topics, timeout=2)
        except KafkaException:
            return False
        if metadata.brokers:
            self._connection = {}
        return bool(metadata.brokers)

    def problems(self) -> list[str]:
        connection = [f"kafka: {message}" for message in self._connection.values()]
        return [*connection, *(self._problems or [])]

    def _create_topics(self, admin: AdminClient, plan: TopicPlan) -> None:
        """Create missing topics as their specs say; existing ones are left to `_check_topics` (and to
        `bridge topics apply` for what else differs)."""
        new = [new_topic(spec) for spec in plan.topics]
        for topic, future in admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_SECONDS).items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                log.debug("topic %s exists", topic)

    def close(self, timeout: float) -> int:
        """Flush what is in flight; return how many records were still undelivered."""
        try:
            remaining = int(self._producer.flush(timeout))
        except KafkaException as error:  # a fatal error raised on this thread: nothing more will be delivered
            self._raised(error)
            remaining = len(self._producer)
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
            if error.args[0].code() == KafkaError._FATAL and self._fatal is None:
                self._fatal = error.args[0].str()  # the poll thread has not seen the fatal error yet
            if error.args[0].code() in TOO_LARGE:
                raise RecordTooLarge(f"Kafka refuses a {record.topic} record this large: {error}") from None
            raise PublishFailed(f"produce to {record.topic} failed: {error}") from error
        return future

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(POLL_SECONDS)
            except KafkaException as error:
                # confluent-kafka raises a fatal error from poll() rather than calling error_cb. The thread
                # goes on polling: the failed records' delivery reports still settle their requests (503).
                self._raised(error)
            except Exception:  # a callback's (ours) bug: this thread settles every delivery, it must go on
                log.exception("a producer callback raised; polling goes on")
            self._rotate_password()

    def _rotate_password(self) -> None:
        """A changed password file: the producer authenticates with the new password from its next connection,
        and admin clients made from now on get it too. The file is looked at at most once a second."""
        if self._password is None:
            return
        password = self._password.get_secret_value()
        if password == self._config["sasl.password"]:
            return
        self._producer.set_sasl_credentials(str(self._config.get("sasl.username", "")), password)
        self._config["sasl.password"] = password
        log.info("kafka.sasl.password changed (%s): in use from the next authentication", self._password.path)

    def _raised(self, error: KafkaException) -> None:
        kafka_error = error.args[0] if error.args and isinstance(error.args[0], KafkaError) else None
        if kafka_error is not None and kafka_error.fatal():
            self._set_fatal(kafka_error)
        else:
            log.error("Kafka producer callback failed: %s", error)


def _give_up(waiting: asyncio.Future[Any], timeout: float) -> None:
    """The publish timeout: the request stops waiting (503); a report that comes later finds it done."""
    if not waiting.done():
        waiting.set_exception(PublishFailed(f"Kafka did not acknowledge within {timeout:g} s"))


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():  # the request already gave up waiting
        return
    if error is None:
        future.set_result(None)
    elif error.code() in TOO_LARGE:  # permanent: a retry would get the same, for ever
        future.set_exception(RecordTooLarge(f"Kafka refused the record as too large: {error.str()}"))
    else:
        future.set_exception(PublishFailed(f"Kafka refused the record: {error.str()}"))


def client_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings an admin client or consumer shares with the producer (address, TLS, SASL): all but the
    producer-only ones by librdkafka's table (enable.gapless.guarantee, say, which an admin client given it
    without idempotence refuses), secrets as their value now. Not the statistics callback: an admin client's
    statistics would overwrite the producer's on /metrics."""
    own = {key: value for key, value in config.items() if key not in PRODUCER_STATISTICS}
    return kafka_config.plain(kafka_config.shared(own))


def raise_limits(admin: AdminClient, topics: Sequence[str], max_message_bytes: int) -> None:
    entry = ConfigEntry("max.message.bytes", str(max_message_bytes), incremental_operation=AlterConfigOpType.SET)
    resources = [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry]) for topic in topics]
    for resource, future in admin.incremental_alter_configs(resources, request_timeout=ADMIN_TIMEOUT_SECONDS).items():
        future.result()
        log.info("topic %s: max.message.bytes raised to %d", resource.name, max_message_bytes)
