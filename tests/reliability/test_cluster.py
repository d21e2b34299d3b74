"""Broker failures on a three-broker KRaft cluster (replication factor 3, min.insync.replicas=2).

A bounded, signed Lettermint load runs while brokers are killed with SIGKILL and started again.
Every event id the bridge answered 2xx must be on its topic afterwards (lost = 0); duplicates are
counted. While fewer than min.insync.replicas brokers run, every answer is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from bridge.providers.lettermint import LettermintSender, signature_headers
from tests.support.cluster import NODES, Cluster, cluster_fixture
from tests.support.reliability import Row, record
from tests.support.stack import Served, read_topic, start_bridge

pytestmark = pytest.mark.reliability

SECRET = "whsec_cluster"
SOURCE = "cluster"
EVENT_TYPE = "message.delivered"  # the busiest topic: every delivery of the load goes there
PUBLISH_TIMEOUT = 3
RETRY_AFTER = 2
CONCURRENCY = 32
RATE = 100  # deliveries started per second at most, over all workers
MAX_EVENTS = 1500
MAX_SECONDS = 45  # a scenario's load stops here whatever happens
RECOVERY_BOUND = 45  # seconds for 2xx to resume after a kill (leader) or a restart (quorum lost)
SENDER = LettermintSender()

cluster = cluster_fixture()


@pytest.fixture(scope="module")
def served(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    sources = f'- {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}'
    folder = tmp_path_factory.mktemp("cluster-bridge")
    bridge = start_bridge(
        cluster.stack,
        folder,
        sources,
        {},
        topics="replication_factor: 3",
        publish_timeout_seconds=PUBLISH_TIMEOUT,
        retry_after_seconds=RETRY_AFTER,
    )
    with bridge as (url, prefix, config):
        yield Served(url, prefix, config, cluster.stack)


@dataclass(frozen=True)
class Attempt:
    event_id: str
    started: float  # monotonic
    ended: float
    status: str  # "200", "503", ... or "refused" / "timeout" when there was no answer
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")


@dataclass
class Load:
    """CONCURRENCY workers posting signed deliveries, RATE per second in all, each a new event id;
    a delivery answered non-2xx is retried after Retry-After, as a provider would."""

    url: str
    attempts: list[Attempt] = field(default_factory=list)
    events: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits, timeout=15) as client:
            await asyncio.gather(*(self._worker(client, deadline) for _ in range(CONCURRENCY)))

    def stop(self) -> None:
        self.stopped.set()

    async def _worker(self, client: httpx.AsyncClient, deadline: float) -> None:
        interval = CONCURRENCY / RATE
        while not self.stopped.is_set() and time.monotonic() < deadline and self.events < MAX_EVENTS:
            self.events += 1
            body = SENDER.example(EVENT_TYPE, datetime.now(UTC))
            event_id = json.loads(body)["id"]
            while not self.stopped.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                attempt = await self._post(client, body, event_id)
                self.attempts.append(attempt)
                if attempt.ok:
                    break
                await self._pause(max(0.0, float(attempt.retry_after or RETRY_AFTER) - (time.monotonic() - started)))
            await self._pause(interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)

    async def _post(self, client: httpx.AsyncClient, body: bytes, event_id: str) -> Attempt:
        started = time.monotonic()
        headers = signature_headers(body, SECRET, time.time())
        try:
            response = await client.post(f"{self.url}/webhooks/{SOURCE}", content=body, headers=headers)
        except httpx.TimeoutException:
            return Attempt(event_id, started, time.monotonic(), "timeout", None)
        except httpx.TransportError:
            return Attempt(event_id, started, time.monotonic(), "refused", None)
        if response.is_success:
            assert event_id in response.json()["events"], response.text
        return Attempt(
            event_id, started, time.monotonic(), str(response.status_code), response.headers.get("retry-after")
        )

    async def first_ok_after(self, since: float, timeout: float = RECOVERY_BOUND) -> float:
        """The monotonic time of the first 2xx answer to a request started at or after `since`."""
        deadline = time.monotonic() + timeout
        while True:
            answered = [attempt.ended for attempt in self.attempts if attempt.ok and attempt.started >= since]
            if answered:
                return min(answered)
            since_then = Counter(attempt.status for attempt in self.attempts if attempt.started >= since)
            assert not self.stopped.is_set() and time.monotonic() < deadline, (
                f"no 2xx within {timeout} s; answers since: {since_then}"
            )
            await asyncio.sleep(0.1)

    def between(self, start: float, end: float) -> list[Attempt]:
        """Requests started at or after `start` and answered before `end`."""
        return [attempt for attempt in self.attempts if attempt.started >= start and attempt.ended <= end]


def topics(served: Served, cluster: Cluster) -> list[str]:
    return sorted(name for name in cluster.admin.list_topics(timeout=10).topics if name.startswith(served.prefix + "."))


def settle(served: Served, cluster: Cluster) -> None:
    """Every node up, the bridge's topics fully replicated and the bridge ready: a clean start."""
    assert all(cluster.running(node) for node in NODES)
    cluster.wait_in_sync(topics(served, cluster))
    deadline = time.monotonic() + 30
    while httpx.get(f"{served.url}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the bridge is not ready on a healthy cluster"
        time.sleep(0.5)


def tally(scenario: str, served: Served, cluster: Cluster, load: Load, recovery: float | None) -> Row:
    """Read the topic whole once the cluster is in sync: every 2xx'd event id must be there."""
    cluster.wait_in_sync(topics(served, cluster))
    counts: Counter[str] = Counter()
    for message in read_topic(cluster.bootstrap_servers, served.topic(EVENT_TYPE)):
        event_id = dict(message.headers() or []).get("event_id")
        if event_id is not None:
            counts[event_id.decode() if isinstance(event_id, bytes) else event_id] += 1
    sent_ids = {attempt.event_id for attempt in load.attempts}
    ok_ids = {attempt.event_id for attempt in load.attempts if attempt.ok}
    lost = sorted(event_id for event_id in ok_ids if counts[event_id] == 0)
    row = Row(
        scenario=scenario,
        sent=len(load.attempts),
        ok=sum(attempt.ok for attempt in load.attempts),
        refused=Counter(attempt.status for attempt in load.attempts if not attempt.ok),
        found=len(ok_ids) - len(lost),
        lost=len(lost),
        duplicates=sum(counts[event_id] - 1 for event_id in sent_ids if counts[event_id] > 1),
        recovery_seconds=recovery,
    )
    record(row)
    print(f"{scenario}: {row.cells()}; never-2xx'd ids found in Kafka: {sum(counts[i] > 0 for i in sent_ids - ok_ids)}")
    assert not lost, f"{len(lost)} event ids answered 2xx are not in Kafka, e.g. {lost[:5]}"
    return row


def only_503_with_retry_after(attempts: list[Attempt]) -> None:
    """Every non-2xx answer of the bridge during a broker failure is a 503 with Retry-After."""
    expected = ("503", str(RETRY_AFTER))
    wrong = Counter((a.status, a.retry_after) for a in attempts if not a.ok and (a.status, a.retry_after) != expected)
    assert not wrong, f"answers other than 503 + Retry-After: {RETRY_AFTER}: {wrong}"


def under_load(scenario: str, served: Served, cluster: Cluster, failure: Callable[[Load], Awaitable[float]]) -> Row:
    """Run `failure` once a steady load is flowing; it returns the recovery time. Then check and tally."""
    settle(served, cluster)

    async def run() -> tuple[Load, float]:
        load = Load(served.url)
        running = asyncio.create_task(load.run())
        try:
            await load.first_ok_after(time.monotonic())
            await asyncio.sleep(2)  # a steady load before the failure
            return load, await failure(load)
        finally:
            load.stop()
            await running

    load, recovered = asyncio.run(run())
    only_503_with_retry_after(load.attempts)
    return tally(scenario, served, cluster, load, recovered)


async def down_then_back(load: Load, cluster: Cluster, victims: tuple[int, ...], what: str) -> float:
    """Kill `victims`; while they are down no request may get a 2xx; restart them; seconds until 2xx again."""
    killed_at = await asyncio.to_thread(cluster.kill, *victims)
    await asyncio.sleep(PUBLISH_TIMEOUT + 5)  # every request started now fails
    restarting = time.monotonic()
    down = load.between(killed_at, restarting)
    assert len(down) >= CONCURRENCY, f"only {len(down)} answers while {what}"
    assert not [a for a in down if a.ok], f"a 2xx while {what}"
    assert all(a.status == "503" and a.retry_after == str(RETRY_AFTER) for a in down), Counter(
        (a.status, a.retry_after) for a in down
    )
    print(f"killed nodes {victims}: {len(down)} answers while {what}, all 503 + Retry-After")
    restart_seconds = await asyncio.to_thread(cluster.restart, *victims)
    recovered = await load.first_ok_after(killed_at) - restarting
    await asyncio.sleep(3)
    print(f"nodes {victims} restarted in {restart_seconds:.1f} s; 2xx {recovered:.1f} s after the restart")
    return recovered


def test_kill_9_of_the_partition_leader_under_load_loses_nothing(cluster: Cluster, served: Served) -> None:
    async def failure(load: Load) -> float:
        leader = cluster.leader(served.topic(EVENT_TYPE))
        assert leader in NODES
        killed_at = await asyncio.to_thread(cluster.kill, leader)
        recovered = await load.first_ok_after(killed_at) - killed_at
        print(f"killed node {leader}; 2xx resumed after {recovered:.1f} s")
        restart_seconds = await asyncio.to_thread(cluster.restart, leader)
        await load.first_ok_after(time.monotonic())
        await asyncio.sleep(3)  # and a steady load with the node back
        print(f"node {leader} restarted in {restart_seconds:.1f} s")
        return recovered

    under_load("3 brokers: kill -9 the leader, restart it (recovery: kill -> 2xx)", served, cluster, failure)


def test_below_min_insync_replicas_the_bridge_answers_503_never_2xx(cluster: Cluster, served: Served) -> None:
    async def failure(load: Load) -> float:
        leader = cluster.leader(served.topic(EVENT_TYPE))
        victims = (leader, next(node for node in NODES if node != leader))
        return await down_then_back(load, cluster, victims, "one broker was up (below min.insync.replicas)")

    scenario = "3 brokers: kill -9 two (< min.insync), restart (recovery: restart -> 2xx)"
    under_load(scenario, served, cluster, failure)


def test_all_brokers_down_then_back_the_bridge_recovers_without_a_restart(cluster: Cluster, served: Served) -> None:
    async def failure(load: Load) -> float:
        return await down_then_back(load, cluster, tuple(NODES), "every broker was down")

    under_load("3 brokers: kill -9 all three, restart (recovery: restart -> 2xx)", served, cluster, failure)
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200  # the same process, still live
