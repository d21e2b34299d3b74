"""Nothing is lost when Kafka stalls: the bridge answers 503 with Retry-After instead of 200, the
provider's retry after the broker is back gets 200, and the event is on its topic."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from bridge.providers.lettermint import Lettermint, LettermintSender, signature_headers
from tests.support.stack import Stack, read_topic, start_bridge

pytestmark = pytest.mark.integration
SECRET = "whsec_outage"
LETTERMINT = Lettermint()
SENDER = LettermintSender()
PUBLISH_TIMEOUT = 2
RETRY_AFTER = 7


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    sources = f'- {{name: outage, provider: lettermint, secrets: ["{SECRET}"]}}'
    folder = tmp_path_factory.mktemp("outage")
    server = {"publish_timeout_seconds": PUBLISH_TIMEOUT, "retry_after_seconds": RETRY_AFTER}
    with start_bridge(stack, folder, sources, {}, **server) as (url, prefix, _):
        yield url, prefix


@pytest.fixture
def paused_broker(stack: Stack) -> Iterator[int]:
    """SIGSTOP the broker this session started (it stops answering, as a stalled or partitioned
    broker does); SIGCONT it whatever happens."""
    if stack.kafka_pid is None:
        pytest.skip("the broker was named by BRIDGE_TEST_KAFKA; this session cannot pause it")
    os.kill(stack.kafka_pid, signal.SIGSTOP)
    try:
        yield stack.kafka_pid
    finally:
        os.kill(stack.kafka_pid, signal.SIGCONT)


def post(url: str, body: bytes) -> httpx.Response:
    headers = signature_headers(body, SECRET, time.time())
    return httpx.post(f"{url}/webhooks/outage", content=body, headers=headers, timeout=35)


def test_a_stalled_broker_gets_503_and_the_retry_after_recovery_is_published(
    stack: Stack, served: tuple[str, str], paused_broker: int
) -> None:
    url, prefix = served
    body = SENDER.example("message.delivered", datetime.now(UTC))
    started = time.monotonic()
    refused = post(url, body)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == str(RETRY_AFTER)
    assert refused.json()["error"] == "publish_failed"
    assert time.monotonic() - started < PUBLISH_TIMEOUT + 3  # answered within the deadline, not the provider's 30 s

    os.kill(paused_broker, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while (retried := post(url, body)).status_code != 200:  # the provider retrying after Retry-After
        assert retried.status_code == 503, retried.text
        assert time.monotonic() < deadline, "the bridge did not recover after the broker came back"
        time.sleep(1)

    event_id = json.loads(body)["id"]
    records = read_topic(stack.bootstrap_servers, f"{prefix}.message.delivered")
    # At least once: a produce that was in flight when the broker stalled may land as well.
    assert 1 <= sum(dict(r.headers() or []).get("event_id") == event_id.encode() for r in records) <= 2
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
