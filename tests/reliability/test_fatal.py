"""A fatal producer error fails liveness so the orchestrator restarts the pod; the producer is not
rebuilt in place, and nothing is answered 2xx from then on.

The fatal error is real: librdkafka's own, in a real `bridge serve`. Production's usual one (an
idempotent producer that lost its sequence) cannot be provoked on demand, so this takes another of
the idempotent producer's fatal conditions: with `enable.gapless.guarantee` (a librdkafka setting the
bridge passes through), a batch the broker refuses for good, here for a topic whose
max.message.bytes is below the record, raises ERR__GAPLESS_GUARANTEE and stops the producer for good.
It goes through the same path as any fatal error: confluent-kafka raises it from poll() (it does not
call error_cb), and the publisher records it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bridge.providers.lettermint import LettermintSender, signature_headers
from tests.support.reliability import Row, record
from tests.support.stack import Stack, create_too_small_topics, free_port, read_topic

pytestmark = pytest.mark.reliability

SECRET = "whsec_fatal"
SOURCE = "fatal"
EVENT_TYPE = "message.delivered"
SENDER = LettermintSender()
SMALL_TOPIC_BYTES = 600  # below any Lettermint record: the broker refuses it (MESSAGE_TOO_LARGE) for good
DELIVERIES = 6
RETRY_AFTER = 4


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"bridge serve exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "/healthz did not answer"
        time.sleep(0.3)


def test_a_fatal_producer_error_fails_liveness_and_nothing_is_answered_2xx(stack: Stack, tmp_path: Path) -> None:
    prefix = f"fatal-{uuid.uuid4().hex[:8]}"
    create_too_small_topics(stack, prefix, EVENT_TYPE, SMALL_TOPIC_BYTES)
    port = free_port()
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"""
kafka:
  bootstrap_servers: "{stack.bootstrap_servers}"
  producer: {{enable.gapless.guarantee: true}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "{prefix}", create: false}}
server: {{port: {port}, retry_after_seconds: {RETRY_AFTER}, shutdown_timeout_seconds: 5}}
sources:
  - {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}
""",
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "bridge.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        # /readyz is 503 throughout: the small topic is a problem it names. Liveness is what matters here.
        wait_healthy(url, process)
        deadline = time.monotonic() + 30  # the schemas must be registered, or deliveries get 503 for that
        while not httpx.get(f"{url}/readyz", timeout=10).json().get("schemas_registered"):
            assert time.monotonic() < deadline, "schemas not registered"
            time.sleep(0.3)
        answers: list[tuple[str, httpx.Response]] = []
        for _ in range(DELIVERIES):
            body = SENDER.example(EVENT_TYPE, datetime.now(UTC))
            headers = signature_headers(body, SECRET, time.time())
            response = httpx.post(f"{url}/webhooks/{SOURCE}", content=body, headers=headers, timeout=30)
            answers.append((json.loads(body)["id"], response))
        health = httpx.get(f"{url}/healthz", timeout=10)
        ready = httpx.get(f"{url}/readyz", timeout=10)
        process.terminate()
        exit_code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log_text = (tmp_path / "bridge.log").read_text(encoding="utf-8", errors="replace")

    statuses = Counter(str(response.status_code) for _, response in answers)
    on_topic = {
        dict(message.headers() or []).get("event_id")
        for message in read_topic(stack.bootstrap_servers, f"{prefix}.{EVENT_TYPE}")
    }
    ok_ids = {event_id for event_id, response in answers if response.is_success}
    lost = [event_id for event_id in ok_ids if event_id.encode() not in on_topic]
    record(
        Row(
            scenario="fatal producer error (librdkafka gapless guarantee)",
            sent=len(answers),
            ok=len(ok_ids),
            refused=Counter(code for code in statuses.elements() if not code.startswith("2")),
            found=len(ok_ids) - len(lost),
            lost=len(lost),
        )
    )
    print(f"answers {dict(statuses)}; /healthz {health.status_code} {health.text}; exit {exit_code}")

    assert not lost
    assert statuses == Counter({"503": DELIVERIES}), [response.text for _, response in answers]
    for _, response in answers:
        assert response.headers["retry-after"] == str(RETRY_AFTER)
    assert health.status_code == 503 and health.json()["status"] == "failed", health.text
    assert "gap-less" in health.json()["kafka_fatal"].lower(), health.text
    assert ready.status_code == 503 and ready.json()["kafka"] is False, ready.text
    assert "Exception in thread" not in log_text, "the delivery-report thread died"
    assert exit_code == 0  # the drain and the flush cope with a dead producer
