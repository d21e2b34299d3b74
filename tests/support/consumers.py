"""What the consumer tests share: events as the framework hands them over, and a store's rows."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bridge.consumers.framework import Consumer, Event, apply_once, prepare
from bridge.consumers.store import Row, Store, open_store
from bridge.providers.lettermint import signature_headers as lettermint_headers
from bridge.providers.standard_webhooks import signature_headers as standard_headers

DAY = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def event(event_type: str, at: datetime = DAY, **fields: Any) -> Event:
    """An event as decoded from its topic; `event_id`, `source`, `provider`, `message_id`, `recipient` overridable."""
    common = {
        "event_id": fields.pop("event_id", None) or str(uuid.uuid4()),
        "source": fields.pop("source", "lm"),
        "provider": fields.pop("provider", "lettermint"),
        "message_id": fields.pop("message_id", "m-1"),
        "recipient": fields.pop("recipient", "user@example.com"),
    }
    value = {**common, "event_type": event_type, "occurred_at": at, **fields}
    return Event(
        event_id=common["event_id"],
        event_type=event_type,
        provider=common["provider"],
        source=common["source"],
        occurred_at=at,
        message_id=common["message_id"],
        recipient=common["recipient"],
        fields=value,
    )


def feed(store: Store, consumer: Consumer, *events: Event) -> int:
    """Apply the events as one batch, the framework's way (idempotent by event id); how many applied."""
    prepare(store, consumer)
    with store.transaction() as work:
        return sum(apply_once(work, consumer, item) for item in events)


def rows(store: Store, sql: str) -> list[Row]:
    with store.transaction() as work:
        return work.rows(sql)


# --- Integration: signed deliveries of several providers, and the consumers as processes. ---

SOURCES_YAML = """
    - name: lm
      provider: lettermint
      secrets: ["whsec_consumers-it"]
    - name: pm
      provider: postmark
      secrets: ["tok_consumers-it"]
      options: {header: X-Webhook-Token}
    - name: rs
      provider: standard-webhooks
      secrets: ["whsec_Y29uc3VtZXJzLWl0LXNlY3JldA=="]
"""
CONSUMER_NAMES = ("suppression", "analytics", "billing")
# Every table a consumer writes, in a fixed order: a store's whole content, to compare exactly.
TABLES = {
    "suppression": "SELECT * FROM suppressions ORDER BY address",
    "analytics": "SELECT * FROM analytics_counts ORDER BY hour, source, provider, event_type",
    "billing": "SELECT * FROM billable_sends ORDER BY source, message_id, recipient",
}


@dataclass(frozen=True)
class Delivery:
    """A delivery to post, signed when posted (signatures carry the time); posted twice, an exact redelivery."""

    source: str
    body: bytes
    sign: Callable[[bytes, float], dict[str, str]]


def lettermint(event_type: str, at: str, data: dict[str, Any]) -> Delivery:
    body = json.dumps({"id": str(uuid.uuid4()), "event": event_type, "timestamp": at, "data": data}).encode()
    return Delivery("lm", body, lambda raw, now: lettermint_headers(raw, "whsec_consumers-it", now))


def postmark(record_type: str, message_id: str, recipient: str, at: str) -> Delivery:
    if record_type == "Delivery":
        payload: dict[str, Any] = {"RecordType": "Delivery", "Recipient": recipient, "DeliveredAt": at}
    else:
        payload = {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "TypeCode": 1,
            "ID": zlib.crc32(message_id.encode()),
            "Email": recipient,
            "BouncedAt": at,
            "Details": "smtp;550 5.1.1 unknown user",
        }
    body = json.dumps({"MessageID": message_id, "MessageStream": "outbound", "ServerID": 23, **payload}).encode()
    return Delivery(
        "pm", body, lambda raw, now: {"Content-Type": "application/json", "X-Webhook-Token": "tok_consumers-it"}
    )


def resend(resend_type: str, message_id: str, recipient: str, at: str, **extra: Any) -> Delivery:
    data = {"created_at": at, "email_id": message_id, "to": [recipient], "subject": "hi", **extra}
    body = json.dumps({"type": resend_type, "created_at": at, "data": data}).encode()
    return Delivery("rs", body, lambda raw, now: standard_headers(raw, "whsec_Y29uc3VtZXJzLWl0LXNlY3JldA==", now))


def post_all(url: str, deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        headers = delivery.sign(delivery.body, time.time())
        answer = httpx.post(f"{url}/webhooks/{delivery.source}", content=delivery.body, headers=headers, timeout=35)
        assert answer.status_code == 200 and answer.json()["status"] == "published", answer.text


def consumer_config(bridge_config: Path, folder: Path, store: str, tag: str) -> Path:
    """The bridge's configuration plus a `consumers:` section: `store` (with `{name}`), groups tagged `tag`."""
    groups = "".join(f"\n  {name}: {{group: {tag}.{name}}}" for name in CONSUMER_NAMES)
    path = folder / f"consumers-{tag}-{uuid.uuid4().hex[:6]}.yaml"  # two configs may share the groups
    path.write_text(bridge_config.read_text() + f"\nconsumers:\n  store: '{store}'\n  poll_seconds: 0.2{groups}\n")
    return path


def run_until_caught_up(config: Path, name: str, *args: str) -> str:
    command = [sys.executable, "-m", "bridge", "--config", str(config), "consumer", "run", name, "--until-caught-up"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def running(config: Path, name: str, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`bridge consumer run NAME` until SIGTERM, stopped by PID (its exit status must be 0)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "consumer", "run", name, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            assert process.wait(timeout=30) == 0, log.read_text()


def contents(store_url: str, name: str) -> list[Row]:
    return query(store_url, TABLES[name])


def query(store_url: str, sql: str) -> list[Row]:
    with open_store(store_url) as store, store.transaction() as work:
        return work.rows(sql)


def wait_for(check: Callable[[], bool], seconds: float = 45) -> None:
    """Until `check()`; a store the consumer process has not created its tables in yet is not there yet."""
    deadline = time.monotonic() + seconds
    while not _holds(check):
        assert time.monotonic() < deadline, "the consumer did not get there in time"
        time.sleep(0.3)


def _holds(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
        return False
