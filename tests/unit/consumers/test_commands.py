"""`consumers:` configuration, `bridge consumer run|report` without a broker, the HTTP endpoint, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Message
from starlette.testclient import TestClient

from bridge import config
from bridge.avro import Encoder, load_schemas
from bridge.cli import EXIT_CONFIG, main
from bridge.consumers.framework import Decoder, Event, Undecodable
from bridge.consumers.http import create_app
from bridge.consumers.store import Store
from bridge.consumers.suppression import Suppression
from bridge.errors import ConfigError
from bridge.events import CanonicalEvent
from tests.support.consumers import DAY, event, feed
from tests.support.fakes import MINIMAL_YAML, MockRegistry


def settings(consumers: str = "") -> config.Settings:
    return config.parse(MINIMAL_YAML + consumers, environ={})


def test_consumers_default_to_a_sqlite_file_each_and_a_group_under_the_prefix() -> None:
    found = settings().consumers
    assert found.store_for("billing") == "sqlite:///bridge-consumer-billing.db"
    assert found.group_for("billing", "webhooks") == "webhooks.consumer.billing"


def test_a_consumer_may_have_its_own_store_and_group() -> None:
    found = settings(
        "consumers:\n  store: postgresql://c@db:5432/all\n  analytics: {store: 'sqlite:///a/{name}.db', group: g}\n"
    ).consumers
    assert found.store_for("analytics") == "sqlite:///a/analytics.db"
    assert found.store_for("billing") == "postgresql://c@db:5432/all"
    assert found.group_for("analytics", "webhooks") == "g"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("consumers: {store: 'mysql://x'}", "consumers.store: 'mysql://x': a store URL starts with sqlite:///"),
        ("consumers: {billing: {stor: x}}", "consumers.billing.stor: unknown key"),
        ("consumers: {batch_size: 0}", "consumers.batch_size: Input should be greater than or equal to 1"),
    ],
)
def test_configuration_errors_name_the_key(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(section + "\n")
    assert message in str(raised.value)


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(MINIMAL_YAML + f"consumers: {{store: 'sqlite:///{tmp_path}/{{name}}.db'}}\n", encoding="utf-8")
    return str(path)


def test_report_of_a_store_nothing_wrote_yet_is_empty(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config_file, "consumer", "report", "billing"]) == 0
    assert capsys.readouterr().out == "per_day\n(none)\n\nper_month\n(none)\n"
    assert main(["--config", config_file, "consumer", "report", "analytics", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"counts": [], "rates": []}


def test_report_of_one_address_as_a_table(config_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(f"sqlite:///{tmp_path}/suppression.db") as store:
        feed(store, Suppression(), event("message.hard_bounced", recipient="a@example.com"))
    assert main(["--config", config_file, "consumer", "report", "suppression", "--address", "A@example.com"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "suppressions"
    columns = ["address", "reason", "detail", "provider", "source", "first_seen", "last_seen", "event_count"]
    assert lines[1].split() == columns
    assert lines[2].split() == [
        "a@example.com",
        "message.hard_bounced",
        "lettermint",
        "lm",
        "2026-11-30T23:30:00.000Z",
        "2026-11-30T23:30:00.000Z",
        "1",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "billing", "--address", "a@example.com"], "--address: only the suppression report"),
        (["run", "billing", "--http-port", "8080"], "--http-port: only the suppression consumer serves HTTP"),
        (["report", "billing", "--store", "mysql://x"], "use sqlite:///path/file.db or postgresql://"),
    ],
)
def test_misuse_exits_2(config_file: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["--config", config_file, "consumer", *args]) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_an_unknown_consumer_is_refused_by_the_parser(config_file: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--config", config_file, "consumer", "run", "marketing"])
    assert raised.value.code == 2


def test_http_lookup_answers_200_json_or_404(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path}/s.db") as store:
        feed(store, Suppression(), event("message.spam_complaint", recipient="a@example.com", feedback_type="abuse"))
        client = TestClient(create_app(store))
        found = client.get("/suppressions/A%40Example.com")
        assert found.status_code == 200
        assert found.json()["address"] == "a@example.com"
        assert found.json()["reason"] == "message.spam_complaint"
        missing = client.get("/suppressions/b@example.com")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_suppressed")
        wrong = client.post("/suppressions/a@example.com")
        assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


def _record(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Message:
    return Message(topic="webhooks.message.delivered", partition=0, offset=7, value=value, headers=headers or [])


def test_decoding_through_the_registry_and_what_becomes_a_dead_letter() -> None:
    registry = MockRegistry()
    encoder = Encoder(registry, load_schemas(), "webhooks")
    encoder.register(auto_register=True)

    canonical = CanonicalEvent(
        event_id="evt-9",
        event_type="message.delivered",
        provider="lettermint",
        source="lm",
        provider_event="message.delivered",
        key="m-1",
        occurred_at=DAY,
        received_at=DAY,
        raw="{}",
        message_id="m-1",
        recipient="a@example.com",
    )
    decoder = Decoder(registry)
    decoded = decoder.decode(_record(encoder.encode(canonical), [("event_id", b"evt-9")]))
    assert isinstance(decoded, Event)
    assert (decoded.event_id, decoded.message_id, decoded.occurred_at) == ("evt-9", "m-1", DAY)
    for value, reason in [
        (b"not avro at all", "SerializationError"),
        (b"\x00\x00\x00\x7f\xffabc", "registry:"),
    ]:
        undecodable = decoder.decode(_record(value))
        assert isinstance(undecodable, Undecodable)
        assert undecodable.reason.startswith(reason)
