"""Internet-edge defects against a real `bridge serve` and a real broker: every accepted body is
publishable, signed but pathological bodies are dead letters (never 500), timestamps no consumer can
decode never reach a topic, aborted clients are counted in one short line, and every answer is counted."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge.providers.lettermint import signature_headers
from tests.support.stack import Stack, decode, read_topic, records_with, start_bridge

pytestmark = pytest.mark.integration
SECRET = "whsec_edge"
SOURCES = f'- {{name: edge, provider: lettermint, secrets: ["{SECRET}"]}}'


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    folder = tmp_path_factory.mktemp("edge")
    with start_bridge(stack, folder, SOURCES, {}) as (url, prefix, _):
        yield url, prefix, folder / "bridge.log"


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/webhooks/edge", content=body, headers=signature_headers(body, SECRET, time.time()), timeout=35
    )


def envelope(**fields: object) -> bytes:
    stamp = fields.pop("timestamp", "2026-12-01T09:00:00Z")
    data = {"message_id": f"m-{uuid.uuid4().hex}", "recipient": "user@example.com", **fields}
    return json.dumps({"id": uuid.uuid4().hex, "event": "message.sent", "timestamp": stamp, "data": data}).encode()


def test_a_signed_delivery_just_under_the_body_limit_is_published(
    stack: Stack, served: tuple[str, str, Path], registry: SchemaRegistryClient
) -> None:
    url, prefix, _ = served
    body = envelope(subject="s" * (1_020_000 - 200))  # 1.02 MB: today's default limit is 1 MiB
    assert 1_000_000 < len(body) <= 1024 * 1024
    response = post(url, body)
    assert (response.status_code, response.json()["status"]) == (200, "published"), response.text
    [record] = records_with(stack, f"{prefix}.message.sent", json.loads(body)["id"])
    assert decode(registry, record)["raw"] == body.decode()


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("nested-arrays", b"[" * 100_000 + b"]" * 100_000),
        ("nested-in-envelope", b'{"id":"x","event":"message.sent","data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        (
            "huge-integer",
            b'{"id":"x","event":"message.sent","timestamp":"2026-12-01T09:00:00Z","data":{"n":' + b"9" * 5000 + b"}}",
        ),
    ],
)
def test_signed_pathological_json_is_a_dead_letter_not_a_500(
    served: tuple[str, str, Path], stack: Stack, name: str, body: bytes
) -> None:
    url, prefix, _ = served
    response = post(url, body)
    assert (response.status_code, response.json()["status"]) == (200, "dead-lettered"), response.text
    [record] = [r for r in read_topic(stack.bootstrap_servers, f"{prefix}.dead-letter") if r.value() == body]
    assert len(dict(record.headers() or [])["dead_letter_reason"]) <= 300 * 3


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-14:00"])
def test_timestamps_no_consumer_can_decode_never_reach_the_event_topic(
    served: tuple[str, str, Path], stack: Stack, registry: SchemaRegistryClient, stamp: str
) -> None:
    url, prefix, _ = served
    body = envelope(timestamp=stamp)
    response = post(url, body)
    assert (response.status_code, response.json()["status"]) == (200, "dead-lettered"), response.text
    assert records_with(stack, f"{prefix}.message.sent", json.loads(body)["id"]) == []
    for record in read_topic(stack.bootstrap_servers, f"{prefix}.message.sent"):
        decode(registry, record)  # everything on the topic decodes with the stock deserializer


def test_a_client_aborting_mid_body_is_counted_in_one_short_line(served: tuple[str, str, Path]) -> None:
    url, _, log = served
    port = int(url.rsplit(":", 1)[1])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b'POST /webhooks/edge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"half":')
            time.sleep(0.2)
    deadline = time.monotonic() + 5
    while 'bridge_aborted_requests_total{source="edge"} 3.0' not in (text := httpx.get(f"{url}/metrics").text):
        assert time.monotonic() < deadline, "aborted requests were not counted"
        time.sleep(0.1)
    assert 'bridge_requests_total{source="edge",status="499",status_class="4xx"} 3.0' in text
    written = log.read_text()
    assert "Traceback" not in written and "ClientDisconnect" not in written
    assert len([line for line in written.splitlines() if "went away" in line]) == 3


def test_every_answer_is_counted(served: tuple[str, str, Path]) -> None:
    url, _, _ = served
    before = _answered(httpx.get(f"{url}/metrics").text)
    statuses = [post(url, body).status_code for body in (b"{}", b"[" * 20_000, envelope(), b"x" * 2_000_000)]
    httpx.post(f"{url}/webhooks/edge", content=b"{}", timeout=10)  # unsigned
    after = _answered(httpx.get(f"{url}/metrics").text)
    assert sorted(statuses) == [200, 200, 200, 413]
    assert after - before == 5


def _answered(metrics: str) -> float:
    return sum(float(value) for value in re.findall(r'^bridge_requests_total\{source="edge".*\} (\S+)$', metrics, re.M))


def small_topic(stack: Stack) -> tuple[str, str, AdminClient]:
    """(prefix, topic, admin): a fresh prefix whose message.delivered topic takes only 1,000,000 bytes."""
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    small = NewTopic(f"{prefix}.message.delivered", 1, 1, config={"max.message.bytes": "1000000"})
    admin.create_topics([small])[small.topic].result(timeout=30)
    return prefix, small.topic, admin


def test_topics_that_would_refuse_records_keep_the_bridge_unready(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix, topic, _ = small_topic(stack)
    folder = tmp_path_factory.mktemp("unready")
    with start_bridge(stack, folder, SOURCES, {}, prefix=prefix, topics="create: false", wait_for="/healthz") as (
        url,
        _,
        _,
    ):
        deadline = time.monotonic() + 20
        while (ready := httpx.get(f"{url}/readyz", timeout=10)).json().get("problems") is None:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.5)
    assert ready.status_code == 503
    problems = ready.json()["problems"]  # the other topics are missing: a problem of its own
    assert any(f"topic {topic} has max.message.bytes=1000000, below the " in problem for problem in problems), problems


def test_topics_the_bridge_manages_are_raised_to_the_limit(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix, topic, admin = small_topic(stack)
    with start_bridge(stack, tmp_path_factory.mktemp("raised"), SOURCES, {}, prefix=prefix):
        pass  # ready: every topic now takes the largest record
    resource = ConfigResource(ResourceType.TOPIC, topic)
    limit = int(admin.describe_configs([resource])[resource].result(timeout=30)["max.message.bytes"].value)
    assert limit > 1024 * 1024 + 16 * 1024
