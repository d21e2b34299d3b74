"""Dead letters you can act on, on the real broker: list and show them, fix the cause, replay them through
today's pipeline onto their proper topic exactly once, and never publish one whose signature does not hold."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from bridge import config, dlq
from bridge.errors import PayloadInvalid
from bridge.events import CanonicalEvent, Delivery
from bridge.providers import build as build_providers
from bridge.providers.lettermint import Lettermint, signature_headers
from tests.support.stack import Stack, decode, post_to, read_topic, records_with, run_cli, start_bridge

pytestmark = pytest.mark.integration
SECRET = "whsec_dlq"
SOURCES = f'- {{name: dl, provider: lettermint, secrets: ["{SECRET}"]}}'


@dataclasses.dataclass(frozen=True)
class Served:
    url: str
    prefix: str
    config: Path
    stack: Stack


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with start_bridge(stack, tmp_path_factory.mktemp("dlq"), SOURCES, {}) as (url, prefix, path):
        yield Served(url, prefix, path, stack)


class FixedLettermint(Lettermint):
    """Today's fix: an envelope without a timestamp happened when it arrived (raw stays as sent)."""

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        try:
            return super().normalise(delivery)
        except PayloadInvalid:
            payload = json.loads(delivery.body)
            if "timestamp" in payload or "created_at" in payload:
                raise
            stamped = {**payload, "timestamp": delivery.received_at.isoformat()}
            fixed = dataclasses.replace(delivery, body=json.dumps(stamped).encode())
            return [dataclasses.replace(event, raw=delivery.body.decode()) for event in super().normalise(fixed)]


def without_timestamp() -> tuple[str, bytes]:
    event_id = uuid.uuid4().hex
    body = {"id": event_id, "event": "message.delivered", "data": {"message_id": f"m-{event_id}"}}
    return event_id, json.dumps(body).encode()


def replay(served: Served, selection: dlq.Selection, fixed: bool = True) -> dlq.Report:
    providers = {**build_providers(), **({"lettermint": FixedLettermint()} if fixed else {})}
    return asyncio.run(dlq.replay(config.load(str(served.config), {}), selection, providers=providers))


def test_a_fixed_dead_letter_is_replayed_onto_its_topic_exactly_once(
    served: Served, registry: SchemaRegistryClient
) -> None:
    event_id, body = without_timestamp()
    answer = post_to(served, "dl", body, signature_headers(body, SECRET, time.time())).json()  # type: ignore[arg-type]
    assert (answer["status"], answer["reason"]) == (
        "dead-lettered",
        "created_at: expected an ISO 8601 string, got NoneType",
    )

    listed = run_cli(served.config, {}, "dlq", "list", "--source", "dl", "--reason", "iso 8601")
    [line] = [text for text in listed.stdout.splitlines() if "expected an ISO 8601 string" in text]
    position = line.split()[0]
    shown = json.loads(run_cli(served.config, {}, "dlq", "show", position).stdout)
    if position.startswith("0:"):  # the one-partition default: the bare offset names it too
        assert json.loads(run_cli(served.config, {}, "dlq", "show", position[2:]).stdout) == shown
    assert (shown["body"], shown["source"], shown["provider"]) == (body.decode(), "dl", "lettermint")
    assert any(header.startswith("x-lettermint-signature: t=") for header in shown["headers"])

    selection = dlq.Selection(source="dl", reason="expected an ISO 8601 string")
    first = replay(served, selection)
    assert first.count("published") >= 1 and first.count("refused") == 0, first.outcomes
    [record] = records_with(served.stack, f"{served.prefix}.message.delivered", event_id)
    headers = dict(record.headers() or [])
    assert headers["replayed_from"] == f"{served.prefix}.dead-letter:{position}".encode()
    decoded = decode(registry, record)
    assert (decoded["event_id"], decoded["raw"]) == (event_id, body.decode())  # raw stays as the provider sent it

    second = replay(served, selection)
    assert second.outcomes == {}, second.outcomes  # the same selection again: nothing new
    assert len(records_with(served.stack, f"{served.prefix}.message.delivered", event_id)) == 1


def test_the_cli_replays_with_todays_code_and_keeps_what_still_fails(served: Served) -> None:
    event_id, body = without_timestamp()
    post_to(served, "dl", body, signature_headers(body, SECRET, time.time()))  # type: ignore[arg-type]
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
    result = run_cli(
        served.config, {}, "dlq", "replay", "--source", "dl", "--since", since, "--group", f"cli-{event_id}"
    )
    assert result.returncode == 0, result.stderr
    assert "still-unusable" in result.stdout and "created_at: expected an ISO 8601 string" in result.stdout
    assert records_with(served.stack, f"{served.prefix}.message.delivered", event_id) == []


def test_a_forged_dead_letter_is_never_published(served: Served) -> None:
    event_id = uuid.uuid4().hex
    body = json.dumps({"id": event_id, "event": "message.delivered", "timestamp": "2026-12-01T09:00:00Z", "data": {}})
    forged = signature_headers(body.encode(), "whsec_not-the-secret", time.time())
    headers = [
        ("dead_letter_reason", b"forged for the test"),
        ("provider", b"lettermint"),
        ("source", b"dl"),
        ("received_at", b"2026-12-01T09:00:00.000+00:00"),
        *((f"http.{name.lower()}", value.encode()) for name, value in forged.items()),
    ]
    producer = Producer({"bootstrap.servers": served.stack.bootstrap_servers})
    producer.produce(f"{served.prefix}.dead-letter", value=body.encode(), key=b"dl", headers=headers)
    assert producer.flush(30) == 0
    report = replay(served, dlq.Selection(source="dl", reason="forged for the test"))
    assert report.count("refused") == 1 and report.count("published") == 0, report.outcomes
    assert "does not verify" in report.outcomes["refused"][0]
    assert records_with(served.stack, f"{served.prefix}.message.delivered", event_id) == []
    assert all(
        event_id.encode() not in (r.value() or b"")
        for r in read_topic(served.stack.bootstrap_servers, f"{served.prefix}.message.delivered")
    )
