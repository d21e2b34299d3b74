"""The reference consumers against `bridge serve`, the real broker and registry, on SQLite and real PostgreSQL.

Signed deliveries of three providers (Lettermint, Postmark, Resend via Standard Webhooks), exact
redeliveries (the bridge's dedupe window is off, so each copy is published again), the same
message id through two providers' shapes, and one record no consumer can decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from tests.support.consumers import (
    CONSUMER_NAMES,
    SOURCES_YAML,
    consumer_config,
    contents,
    lettermint,
    post_all,
    postmark,
    query,
    resend,
    run_until_caught_up,
    running,
    wait_for,
)
from tests.support.postgres import Postgres
from tests.support.stack import Served, Stack, free_port, read_topic, start_bridge

pytestmark = pytest.mark.integration

DELIVERED_TWICE = lettermint(
    "message.delivered", "2026-12-01T00:10:00.000Z", {"message_id": "m-1", "recipient": "alice@example.com"}
)
BOUNCED_TWICE = postmark("Bounce", "m-5", "bob@example.com", "2026-12-01T00:30:00.000Z")
FIRST_HALF = [  # Lettermint only
    lettermint("message.created", "2026-11-30T23:30:00.000Z", {"message_id": "m-1", "recipient": "alice@example.com"}),
    DELIVERED_TWICE,
    lettermint(
        "message.hard_bounced", "2026-11-30T23:40:00.000Z", {"message_id": "m-2", "recipient": "bob@example.com"}
    ),
    lettermint(
        "message.soft_bounced", "2026-11-30T23:45:00.000Z", {"message_id": "m-3", "recipient": "carol@example.com"}
    ),
    lettermint(
        "message.spam_complaint", "2026-12-01T00:05:00.000Z", {"message_id": "m-4", "recipient": " Dave@Example.COM"}
    ),
    lettermint("suppression.added", "2026-11-30T23:50:00.000Z", {"type": "email", "value": "erin@example.com"}),
    lettermint("suppression.removed", "2026-12-01T00:15:00.000Z", {"type": "email", "value": "erin@example.com"}),
]
SECOND_HALF = [  # Postmark and Resend, and exact redeliveries of both halves
    DELIVERED_TWICE,
    postmark("Delivery", "m-1", "alice@example.com", "2026-12-01T00:20:00.000Z"),  # the same message id, another shape
    BOUNCED_TWICE,
    BOUNCED_TWICE,
    resend("email.sent", "m-6", "frank@example.com", "2026-11-30T23:55:00.000Z"),
    resend("email.delivered", "m-6", "frank@example.com", "2026-12-01T00:01:00.000Z"),
    resend(
        "email.bounced",
        "m-7",
        "BOB@example.com",
        "2026-12-01T00:40:00.000Z",
        bounce={"message": "mailbox unavailable", "subType": "General", "type": "Permanent"},
    ),
]
# Active suppressions (address, reason, provider, source, first seen, last seen, count): bob three times over
# three providers, the newest wins; erin added then removed; carol's soft bounce suppresses nothing.
SUPPRESSED_AFTER_ALL = [
    ("bob@example.com", "message.hard_bounced", "standard-webhooks", "rs", "2026-11-30T23:40:00.000Z",
     "2026-12-01T00:40:00.000Z", 3),
    ("dave@example.com", "message.spam_complaint", "lettermint", "lm", "2026-12-01T00:05:00.000Z",
     "2026-12-01T00:05:00.000Z", 1),
]  # fmt: skip
SUPPRESSED_AFTER_FIRST = [
    ("bob@example.com", "message.hard_bounced", "lettermint", "lm", "2026-11-30T23:40:00.000Z",
     "2026-11-30T23:40:00.000Z", 1),
    SUPPRESSED_AFTER_ALL[1],
]  # fmt: skip
COUNTS_AFTER_FIRST = [
    ("2026-11-30T23:00:00Z", "lm", "lettermint", "message.created", 1),
    ("2026-11-30T23:00:00Z", "lm", "lettermint", "message.hard_bounced", 1),
    ("2026-11-30T23:00:00Z", "lm", "lettermint", "message.soft_bounced", 1),
    ("2026-12-01T00:00:00Z", "lm", "lettermint", "message.delivered", 1),
    ("2026-12-01T00:00:00Z", "lm", "lettermint", "message.spam_complaint", 1),
]
COUNTS_AFTER_ALL = sorted(
    [
        *COUNTS_AFTER_FIRST,
        ("2026-11-30T23:00:00Z", "rs", "standard-webhooks", "message.created", 1),
        ("2026-12-01T00:00:00Z", "pm", "postmark", "message.delivered", 1),
        ("2026-12-01T00:00:00Z", "pm", "postmark", "message.hard_bounced", 1),
        ("2026-12-01T00:00:00Z", "rs", "standard-webhooks", "message.delivered", 1),
        ("2026-12-01T00:00:00Z", "rs", "standard-webhooks", "message.hard_bounced", 1),
    ]
)
# (source, message id, recipient, provider, first event type, billing day)
BILLED_AFTER_FIRST = [("lm", "m-1", "alice@example.com", "lettermint", "message.created", "2026-11-30")]
BILLED_AFTER_ALL = [
    *BILLED_AFTER_FIRST,
    ("pm", "m-1", "alice@example.com", "postmark", "message.delivered", "2026-12-01"),
    ("rs", "m-6", "frank@example.com", "standard-webhooks", "message.created", "2026-11-30"),
]


@pytest.fixture
def bridge(stack: Stack, tmp_path: Path) -> Iterator[Served]:
    with start_bridge(stack, tmp_path, SOURCES_YAML, {}, dedupe_seconds=0) as (url, prefix, config):
        yield Served(url, prefix, config, stack)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL template (`{name}`): a SQLite file per consumer, or one fresh PostgreSQL database for all three."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/stores/{{name}}.db"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


def named(store: str, name: str) -> str:
    return store.replace("{name}", name)


def suppressed(url: str) -> list[tuple[object, ...]]:
    """Active entries, without the detail and event id columns."""
    rows = contents(url, "suppression")
    return [
        (r[0], r[1], r[3], r[4], r[5], r[6], r[8]) for r in rows if r[6] is not None and (r[9] is None or r[6] > r[9])
    ]


def counted(url: str) -> list[tuple[object, ...]]:
    """(hour, source, provider, event type, events)."""
    return [(r[3], r[0], r[1], r[2], r[4]) for r in contents(url, "analytics")]


def billed(url: str) -> list[tuple[object, ...]]:
    return [(r[0], r[1], r[2], r[3], r[4], r[7]) for r in contents(url, "billing")]


def undecodable(bridge: Served) -> None:
    """One record on a topic every consumer reads, not in the wire format: a dead letter for each."""
    producer = Producer({"bootstrap.servers": bridge.stack.bootstrap_servers})
    producer.produce(bridge.topic("message.hard_bounced"), b"not avro", key=b"garbage")
    assert producer.flush(10) == 0


def dead_letters(url: str, name: str) -> list[tuple[object, ...]]:
    """One consumer's dead letters (in PostgreSQL the three share a database)."""
    return query(url, f"SELECT consumer, topic, reason FROM consumer_dead_letters WHERE consumer = '{name}'")


def test_three_consumers_store_exactly_what_the_providers_sent(bridge: Served, store: str, tmp_path: Path) -> None:
    post_all(bridge.url, FIRST_HALF + SECOND_HALF)
    undecodable(bridge)
    config = consumer_config(bridge.config, tmp_path, store, f"{bridge.prefix}.all")
    for name in CONSUMER_NAMES:
        run_until_caught_up(config, name)
    assert suppressed(named(store, "suppression")) == SUPPRESSED_AFTER_ALL
    assert counted(named(store, "analytics")) == COUNTS_AFTER_ALL
    assert billed(named(store, "billing")) == BILLED_AFTER_ALL
    for name in ("suppression", "analytics"):  # billing does not read hard bounces
        assert dead_letters(named(store, name), name) == [
            (name, bridge.topic("message.hard_bounced"), "SerializationError: Invalid magic byte")
        ]
    assert dead_letters(named(store, "billing"), "billing") == []
    # A second run finds nothing new: committed offsets, and nothing changes.
    assert "0 processed, 0 duplicates" in run_until_caught_up(config, "billing")


def test_a_stopped_consumer_catches_up_while_the_others_keep_up(bridge: Served, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/stores/{{name}}.db"
    config = consumer_config(bridge.config, tmp_path, store, f"{bridge.prefix}.live")
    port = free_port()
    with (
        running(config, "suppression", tmp_path / "suppression.log", "--http-port", str(port)),
        running(config, "analytics", tmp_path / "analytics.log"),
    ):
        with running(config, "billing", tmp_path / "billing.log"):
            post_all(bridge.url, FIRST_HALF)
            wait_for(lambda: billed(named(store, "billing")) == BILLED_AFTER_FIRST)
            wait_for(lambda: suppressed(named(store, "suppression")) == SUPPRESSED_AFTER_FIRST)
            wait_for(lambda: counted(named(store, "analytics")) == COUNTS_AFTER_FIRST)
        # billing is stopped (SIGTERM, exit 0); the other two go on with what keeps coming.
        post_all(bridge.url, SECOND_HALF)
        wait_for(lambda: suppressed(named(store, "suppression")) == SUPPRESSED_AFTER_ALL)
        wait_for(lambda: counted(named(store, "analytics")) == COUNTS_AFTER_ALL)
        assert billed(named(store, "billing")) == BILLED_AFTER_FIRST
        found = httpx.get(f"http://127.0.0.1:{port}/suppressions/Bob@Example.com", timeout=5)
        assert (found.status_code, found.json()["event_count"], found.json()["provider"]) == (
            200,
            3,
            "standard-webhooks",
        )
        assert httpx.get(f"http://127.0.0.1:{port}/suppressions/erin@example.com", timeout=5).status_code == 404
    out = run_until_caught_up(config, "billing")
    assert billed(named(store, "billing")) == BILLED_AFTER_ALL  # nothing lost, nothing counted twice
    assert "3 processed, 1 duplicates" in out  # SECOND_HALF's accepted events; the redelivered m-1 is known


def test_a_rebuild_from_the_earliest_offsets_gives_identical_stores(
    bridge: Served, postgres: Postgres, tmp_path: Path
) -> None:
    post_all(bridge.url, FIRST_HALF + SECOND_HALF)
    first = consumer_config(bridge.config, tmp_path, f"sqlite:///{tmp_path}/first/{{name}}.db", f"{bridge.prefix}.a")
    rebuilt_url = postgres.new_database()
    rebuilt = consumer_config(bridge.config, tmp_path, rebuilt_url, f"{bridge.prefix}.a")  # the same groups
    for name in CONSUMER_NAMES:
        run_until_caught_up(first, name)
        assert contents(f"sqlite:///{tmp_path}/first/{name}.db", name)  # something to rebuild
        assert "0 processed" in run_until_caught_up(rebuilt, name)  # the group is at the end: nothing to do
        run_until_caught_up(rebuilt, name, "--from-beginning")
        assert contents(rebuilt_url, name) == contents(f"sqlite:///{tmp_path}/first/{name}.db", name)
        # Replaying into a store that has it all changes nothing either.
        assert "0 processed" in run_until_caught_up(first, name, "--from-beginning")
        assert contents(rebuilt_url, name) == contents(f"sqlite:///{tmp_path}/first/{name}.db", name)


def test_redeliveries_are_published_again_so_the_consumers_see_them(bridge: Served) -> None:
    """The premise of the tests above: with the dedupe window off, each copy is its own record."""
    post_all(bridge.url, [BOUNCED_TWICE, BOUNCED_TWICE])
    records = read_topic(bridge.stack.bootstrap_servers, bridge.topic("message.hard_bounced"))
    assert len(records) == 2
    assert len({dict(record.headers() or [])["event_id"] for record in records}) == 1
