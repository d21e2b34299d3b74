"""Schema registry trouble, injected with SIGSTOP (the registry stops answering, as a hung or partitioned
one does): down after start-up, the bridge publishes on from the schema ids it registered; down at
start-up, it is not ready (liveness holds) and becomes ready without a restart once the registry answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bridge.app import REGISTRY_RETRY_SECONDS, REGISTRY_TIMEOUT_SECONDS
from bridge.providers.lettermint import LettermintSender, signature_headers
from tests.support.reliability import Row, record
from tests.support.stack import Stack, read_topic, start_bridge

pytestmark = pytest.mark.reliability

SECRET = "whsec_registry"
SOURCE = "registry"
SOURCES = f'- {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}'
EVENT_TYPE = "message.delivered"
SENDER = LettermintSender()
RETRY_AFTER = 3
DELIVERIES = 200  # while the registry is down after start-up
CONCURRENCY = 8
DURING_OUTAGE = 5  # deliveries refused while the registry is down at start-up, retried after it is back
# One registration attempt waits out the client's timeout, then the next comes after the retry pause.
RECOVERY_BOUND = REGISTRY_TIMEOUT_SECONDS + REGISTRY_RETRY_SECONDS + 10


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def registry_pid(stack: Stack) -> int:
    if stack.registry_pid is None:
        pytest.skip("the registry was named by BRIDGE_TEST_REGISTRY or runs in a container; it cannot be paused")
    return stack.registry_pid


def body() -> tuple[bytes, str]:
    payload = SENDER.example(EVENT_TYPE, datetime.now(UTC))
    return payload, json.loads(payload)["id"]


def post(url: str, payload: bytes) -> httpx.Response:
    headers = signature_headers(payload, SECRET, time.time())
    return httpx.post(f"{url}/webhooks/{SOURCE}", content=payload, headers=headers, timeout=30)


def counts_on(stack: Stack, topic: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in read_topic(stack.bootstrap_servers, topic):
        event_id = dict(message.headers() or []).get("event_id")
        if isinstance(event_id, bytes):
            counts[event_id.decode()] += 1
    return counts


def tally(scenario: str, stack: Stack, topic: str, answers: list[tuple[str, str]], recovery: float | None) -> Row:
    """`answers`: (event id, status) per request."""
    counts = counts_on(stack, topic)
    ok_ids = {event_id for event_id, status in answers if status.startswith("2")}
    lost = sorted(event_id for event_id in ok_ids if counts[event_id] == 0)
    row = record(
        Row(
            scenario=scenario,
            sent=len(answers),
            ok=sum(status.startswith("2") for _, status in answers),
            refused=Counter(status for _, status in answers if not status.startswith("2")),
            found=len(ok_ids) - len(lost),
            lost=len(lost),
            duplicates=sum(n - 1 for event_id, n in counts.items() if n > 1 and event_id in dict(answers)),
            recovery_seconds=recovery,
        )
    )
    print(row.cells())
    assert not lost, f"{len(lost)} event ids answered 2xx are not in Kafka, e.g. {lost[:5]}"
    return row


def test_registry_down_after_start_up_publishing_goes_on_from_cached_ids(
    stack: Stack, registry_pid: int, tmp_path: Path
) -> None:
    with start_bridge(stack, tmp_path, SOURCES, {}, retry_after_seconds=RETRY_AFTER) as (url, prefix, _):

        async def load() -> list[tuple[str, str]]:
            answers: list[tuple[str, str]] = []
            queue = [body() for _ in range(DELIVERIES)]
            async with httpx.AsyncClient(timeout=30) as client:

                async def worker() -> None:
                    while queue:
                        payload, event_id = queue.pop()
                        headers = signature_headers(payload, SECRET, time.time())
                        try:
                            response = await client.post(f"{url}/webhooks/{SOURCE}", content=payload, headers=headers)
                        except httpx.TransportError as error:
                            answers.append((event_id, type(error).__name__))
                        else:
                            answers.append((event_id, str(response.status_code)))

                await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 90)
            return answers

        with paused(registry_pid):
            started = time.monotonic()
            answers = asyncio.run(load())
            took = time.monotonic() - started
            ready = httpx.get(f"{url}/readyz", timeout=10)
        print(f"{DELIVERIES} deliveries with the registry stopped: {Counter(s for _, s in answers)} in {took:.1f} s")

    tally("registry down after start-up (SIGSTOP)", stack, f"{prefix}.{EVENT_TYPE}", answers, None)
    assert Counter(status for _, status in answers) == Counter({"200": DELIVERIES})
    assert ready.status_code == 200, ready.text  # readiness does not hang on a registry it no longer needs


def test_registry_down_at_start_up_not_ready_until_it_answers_then_ready_without_restart(
    stack: Stack, registry_pid: int, tmp_path: Path
) -> None:
    answers: list[tuple[str, str]] = []
    deliveries = [body() for _ in range(DURING_OUTAGE)]
    with contextlib.ExitStack() as outage:
        outage.enter_context(paused(registry_pid))
        # A fresh topic prefix (start_bridge's default): every subject must be registered anew.
        bridge = start_bridge(stack, tmp_path, SOURCES, {}, wait_for="/healthz", retry_after_seconds=RETRY_AFTER)
        url, prefix, _ = outage.enter_context(bridge)  # left after the registry: the bridge stops first
        # Through at least one failed registration attempt and its retry pause.
        time.sleep(REGISTRY_TIMEOUT_SECONDS + 1)
        not_ready = httpx.get(f"{url}/readyz", timeout=10)
        alive = httpx.get(f"{url}/healthz", timeout=10)
        refused = []
        for payload, event_id in deliveries:
            response = post(url, payload)
            refused.append(response)
            answers.append((event_id, str(response.status_code)))
        time.sleep(REGISTRY_RETRY_SECONDS)
        still_not_ready = httpx.get(f"{url}/readyz", timeout=10)

        os.kill(registry_pid, signal.SIGCONT)
        resumed = time.monotonic()
        deadline = resumed + RECOVERY_BOUND
        while (ready := httpx.get(f"{url}/readyz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, (
                f"not ready {RECOVERY_BOUND} s after the registry came back: {ready.text}"
            )
            time.sleep(0.2)
        recovery = time.monotonic() - resumed
        for payload, event_id in deliveries:  # the provider's retries, after Retry-After
            answers.append((event_id, str(post(url, payload).status_code)))
        print(f"ready {recovery:.1f} s after SIGCONT; answers {Counter(s for _, s in answers)}")

    assert (not_ready.status_code, not_ready.json()["schemas_registered"]) == (503, False), not_ready.text
    assert not_ready.json()["ready"] is False and not_ready.json()["kafka"] is True
    assert still_not_ready.status_code == 503, still_not_ready.text
    assert alive.status_code == 200, alive.text  # liveness holds: a restart would not help
    for response in refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "registry_unavailable"
        assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert ready.json()["schemas_registered"] is True
    row = tally("registry down at start-up, back (SIGSTOP/SIGCONT)", stack, f"{prefix}.{EVENT_TYPE}", answers, recovery)
    assert row.ok == DURING_OUTAGE and row.found == DURING_OUTAGE
    assert row.duplicates == 0  # refused before anything was published: the retry is the only copy
