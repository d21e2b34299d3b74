"""Mailgun provider: in-body signature, token replay cache, payload mapping (docs/providers.md#mailgun-mailgun)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers.base import ProviderIO
from bridge.providers.mailgun import REPLAYED, Mailgun, MailgunSender, MailgunSource, TokenCache, sign_body
from tests.support import providers as helpers
from tests.support.providers import file_name, fits_schema, fixture_files, is_fresh

SENDER = MailgunSender()
FIXTURES = helpers.FIXTURES / "mailgun"
FIXTURE_FILES = fixture_files("mailgun")

# Vector computed outside Python: printf '%s' "$T$TOKEN" | openssl dgst -sha256 -hmac "$KEY"
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
T = 1700000000
TOKEN = "651869375b9df3c98fc15c4889b102119add1235c38fc92824"
DIGEST = "ef2ab126497053ea988c2100440a63ccb21dee90ee89b85b0424c1fd5586cbe4"
OTHER = "key-some-other-signing-key"
PARENT = "key-primary-account-signing-key"

RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)
NOW_DT = datetime(2025, 8, 8, 20, 15, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())
EVENT_DATA = {
    "event": "delivered",
    "timestamp": 1700000000.25,
    "recipient": "user@example.com",
    "message": {"headers": {"message-id": "m1@example.com"}},
}


# --- helpers -------------------------------------------------------------------------------------


def hex_hmac(key: str, timestamp: int | str, token: str) -> str:
    """Computed here, independently of the provider module."""
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def envelope(signature: dict[str, Any] | None, data: object = None) -> bytes:
    payload: dict[str, Any] = {"event-data": EVENT_DATA if data is None else data}
    if signature is not None:
        payload["signature"] = signature
    return json.dumps(payload).encode()


def block(key: str = KEY, timestamp: int | str = T, token: str = TOKEN, **extra: object) -> dict[str, Any]:
    return {"timestamp": str(timestamp), "token": token, "signature": hex_hmac(key, timestamp, token), **extra}


def signed(key: str = KEY, timestamp: int | str = T, token: str = TOKEN, data: object = None) -> bytes:
    return envelope(block(key, timestamp, token), data)


def resign(body: bytes, key: str = KEY, timestamp: int | None = None) -> bytes:
    """A fixture body with its (empty) signature computed over its own timestamp and token."""
    payload = json.loads(body)
    signature = payload["signature"]
    signature["signature"] = hex_hmac(
        key, signature["timestamp"] if timestamp is None else timestamp, signature["token"]
    )
    if timestamp is not None:
        signature["timestamp"] = str(timestamp)
    return json.dumps(payload, ensure_ascii=False).encode()


def source_tree(*keys: str, tolerance: int = 300, name: str = "mg", **options: object) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "mailgun",
        "secrets": list(keys or [KEY]),
        "tolerance_seconds": tolerance,
        "options": options,
    }


def source(*keys: str, tolerance: int = 300, name: str = "mg", **options: object) -> MailgunSource:
    return MailgunSource.model_validate(source_tree(*keys, tolerance=tolerance, name=name, **options))


def verify(body: bytes, now: float = T, src: MailgunSource | None = None, provider: Mailgun | None = None) -> None:
    """A fresh provider (so an empty replay cache) unless one is passed."""
    (provider or Mailgun()).verify(Headers(), body, src or source(), now)


def normalise_all(body: bytes) -> list[CanonicalEvent]:
    return Mailgun().normalise(Delivery("mg-prod", "mailgun", Headers(), body, RECEIVED))


def normalise(body: bytes) -> CanonicalEvent:
    [event] = normalise_all(body)
    return event


def fixture(name: str) -> CanonicalEvent:
    return normalise((FIXTURES / name).read_bytes())


# --- 1. verifier ---------------------------------------------------------------------------------


def test_vector_is_what_hmac_gives() -> None:
    assert hex_hmac(KEY, T, TOKEN) == DIGEST


def test_vector_verifies() -> None:
    verify(envelope({"timestamp": str(T), "token": TOKEN, "signature": DIGEST}))


def test_registered_under_its_name() -> None:
    spec = PROVIDERS["mailgun"]
    assert (spec.source, spec.sender) == (MailgunSource, MailgunSender)
    assert isinstance(spec.build(ProviderIO.default()), Mailgun)


def test_each_build_has_its_own_replay_caches() -> None:
    """The caches live in the provider object, built per app: two apps do not share tokens."""
    spec = PROVIDERS["mailgun"]
    first, second = spec.build(ProviderIO.default()), spec.build(ProviderIO.default())
    assert isinstance(first, Mailgun) and isinstance(second, Mailgun)
    verify(signed(), provider=first)
    verify(signed(), provider=second)
    with pytest.raises(SignatureInvalid, match=REPLAYED):
        verify(signed(), provider=first)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_every_fixture_verifies_once_signed(path: Path) -> None:
    body = resign(path.read_bytes())
    verify(body, now=int(json.loads(body)["signature"]["timestamp"]))


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(block(timestamp=T) | {"signature": DIGEST.upper()}, id="uppercase-hex"),
        pytest.param({"timestamp": T, "token": TOKEN, "signature": DIGEST}, id="integer-timestamp"),
        pytest.param(block(OTHER) | {"parent-signature": hex_hmac(KEY, T, TOKEN)}, id="parent-signature-matches"),
        pytest.param(block() | {"parent-signature": "not-hex"}, id="malformed-parent-ignored"),
        pytest.param(block(token="t" * 256), id="256-character-token"),
    ],
)
def test_accepts(signature: dict[str, Any]) -> None:
    verify(envelope(signature))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(envelope(block() | {"token": TOKEN[:-1] + "5"}), id="tampered-token"),
        pytest.param(envelope(block() | {"timestamp": str(T + 1)}), id="tampered-timestamp"),
        pytest.param(envelope(block() | {"signature": DIGEST[:-1] + "5"}), id="tampered-signature"),
        pytest.param(signed(OTHER), id="wrong-key"),
        pytest.param(signed(KEY.upper()), id="key-case-matters"),
        pytest.param(envelope(None), id="no-signature-object"),
        pytest.param(envelope({}), id="empty-signature-object"),
        pytest.param(json.dumps({"signature": DIGEST, "event-data": EVENT_DATA}).encode(), id="signature-a-string"),
        pytest.param(envelope(block() | {"signature": ""}), id="empty-signature-unsigned-fixture"),
        pytest.param(envelope({k: v for k, v in block().items() if k != "signature"}), id="no-signature-value"),
        pytest.param(envelope(block() | {"signature": DIGEST[:63]}), id="63-hex-digits"),
        pytest.param(envelope(block() | {"signature": "g" + DIGEST[1:]}), id="non-hex"),
        pytest.param(envelope(block() | {"signature": "\u00e9" + DIGEST[1:]}), id="non-ascii"),
        pytest.param(envelope({k: v for k, v in block().items() if k != "token"}), id="no-token"),
        pytest.param(signed(token=""), id="empty-token"),
        pytest.param(envelope(block() | {"token": 42}), id="numeric-token"),
        pytest.param(signed(token="t" * 257), id="token-too-long"),
        pytest.param(envelope({k: v for k, v in block().items() if k != "timestamp"}), id="no-timestamp"),
        pytest.param(signed(timestamp="17e8"), id="non-numeric-timestamp"),
        pytest.param(signed(timestamp=f"-{T}"), id="negative-timestamp"),
        pytest.param(signed(timestamp=f"{T}.5"), id="fractional-timestamp"),
        pytest.param(envelope(block() | {"timestamp": True}), id="boolean-timestamp"),
        pytest.param(envelope(block(OTHER) | {"parent-signature": hex_hmac(OTHER, T, TOKEN)}), id="parent-wrong-key"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"[]", id="json-array"),
        pytest.param(signed().decode().encode("utf-16"), id="utf-16"),
        pytest.param(b'{"signature": {"token": "\xff"}}', id="not-utf-8"),
    ],
)
def test_rejects(body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(body)
    assert type(caught.value) is SignatureInvalid  # not reported as a clock problem


def test_headers_play_no_part() -> None:
    Mailgun().verify(Headers({"X-Mailgun-Signature": "nonsense"}), signed(), source(), T)


def test_signature_does_not_cover_event_data() -> None:
    """Mailgun signs timestamp + token only: altered event-data verifies on first sight. What
    stops a tampered copy of a real delivery is the token cache (next test) and TLS."""
    verify(signed(data=EVENT_DATA | {"recipient": "attacker@example.com"}))


def test_a_tampered_copy_of_a_delivered_event_is_a_replay() -> None:
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    with pytest.raises(SignatureInvalid, match=REPLAYED):
        verify(signed(data=EVENT_DATA | {"recipient": "attacker@example.com"}), provider=mailgun)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_within_tolerance(skew: int) -> None:
    verify(signed(), now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, 301.5, -86_400])
def test_outside_tolerance_is_stale(skew: float) -> None:
    with pytest.raises(StaleTimestamp):
        verify(signed(), now=T + skew)


def test_stale_only_reported_for_authentic_deliveries() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(signed(OTHER), now=T + 3600)
    assert type(caught.value) is SignatureInvalid


@pytest.mark.parametrize(
    ("tolerance", "skew", "ok"),
    [(0, 0, True), (0, 1, False), (10, -10, True), (10, 11, False), (900, -900, True), (900, 901, False)],
)
def test_tolerance_per_source(tolerance: int, skew: int, ok: bool) -> None:
    assert is_fresh(lambda: verify(signed(), now=T + skew, src=source(tolerance=tolerance))) is ok


ROTATING = source("key-old-signing-key", "key-new-signing-key")


@pytest.mark.parametrize("key", ["key-old-signing-key", "key-new-signing-key"])
def test_rotation_either_key(key: str) -> None:
    verify(signed(key), src=ROTATING)


def test_rotation_third_key_rejected() -> None:
    with pytest.raises(SignatureInvalid):
        verify(signed("key-third-signing-key"), src=ROTATING)


def test_subaccount_signature_or_parent_signature_with_either_configured_key() -> None:
    subaccount = envelope(block("key-subaccount") | {"parent-signature": hex_hmac(PARENT, T, TOKEN)})
    verify(subaccount, src=source(PARENT))
    verify(subaccount, src=source("key-subaccount"))
    with pytest.raises(SignatureInvalid):
        verify(subaccount, src=source(OTHER))


# --- 2. token replay cache -----------------------------------------------------------------------


def test_replayed_token_rejected() -> None:
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    with pytest.raises(SignatureInvalid) as caught:
        verify(signed(), now=T + 1, provider=mailgun)
    assert (type(caught.value), str(caught.value)) == (SignatureInvalid, REPLAYED)


@pytest.mark.parametrize("later", [1, 299, 300, 300.99])
def test_replay_rejected_for_the_whole_window(later: float) -> None:
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    with pytest.raises(SignatureInvalid, match=REPLAYED):
        verify(signed(), now=T + later, provider=mailgun)


def test_after_the_window_a_replay_is_stale() -> None:
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    with pytest.raises(StaleTimestamp):
        verify(signed(), now=T + 301, provider=mailgun)


def test_entry_expires_with_the_window() -> None:
    """The same token signed again after the window (only the key holder can) passes: the entry is gone."""
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    verify(signed(timestamp=T + 301), now=T + 301, provider=mailgun)


def test_future_dated_delivery_is_remembered_until_its_own_window_ends() -> None:
    mailgun = Mailgun()
    verify(signed(timestamp=T + 300), now=T, provider=mailgun)
    with pytest.raises(SignatureInvalid, match=REPLAYED):
        verify(signed(timestamp=T + 300), now=T + 600, provider=mailgun)


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(envelope(block() | {"signature": DIGEST[:-1] + "5"}), id="tampered"),
        pytest.param(signed(OTHER), id="wrong-key"),
        pytest.param(signed(timestamp=T + 1000), id="stale-future-dated"),
    ],
)
def test_a_rejected_delivery_does_not_poison_the_cache(forged: bytes) -> None:
    mailgun = Mailgun()
    with pytest.raises(SignatureInvalid):
        verify(forged, provider=mailgun)
    verify(signed(), provider=mailgun)


def test_cache_bounded_in_size_oldest_expiry_evicted_first() -> None:
    mailgun = Mailgun()
    small = source(replay_cache_size=2)
    for second, token in enumerate("abc"):
        verify(signed(timestamp=T + second, token=token), now=T + second, src=small, provider=mailgun)
    verify(signed(timestamp=T, token="a"), now=T + 3, src=small, provider=mailgun)  # evicted: the bound's price
    with pytest.raises(SignatureInvalid, match=REPLAYED):
        verify(signed(timestamp=T + 2, token="c"), now=T + 3, src=small, provider=mailgun)


def test_cache_is_per_source() -> None:
    """Each source is its own webhook: one Mailgun event posted to two URLs may share a token
    (unconfirmed, see docs/providers.md)."""
    mailgun = Mailgun()
    verify(signed(), src=source(name="mg-a"), provider=mailgun)
    verify(signed(), src=source(name="mg-b"), provider=mailgun)


def test_cache_is_per_process() -> None:
    """Two replicas do not share tokens: the documented limitation (consumers dedupe on event_id)."""
    verify(signed(), provider=Mailgun())
    verify(signed(), provider=Mailgun())


def test_token_cache_drops_expired_entries() -> None:
    cache = TokenCache(capacity=100)
    assert all(cache.claim(f"t{i}", expires_at=T + 300, now=T) for i in range(50))
    assert len(cache) == 50
    assert cache.claim("later", expires_at=T + 301 + 300, now=T + 300)
    assert len(cache) == 51  # still within the window at its last second
    assert cache.claim("last", expires_at=T + 301 + 300, now=T + 301)
    assert len(cache) == 2


def test_token_cache_evicts_the_entry_closest_to_expiry_not_the_oldest() -> None:
    cache = TokenCache(capacity=1)
    assert cache.claim("long-window", expires_at=T + 900, now=T)
    assert cache.claim("short-window", expires_at=T + 300, now=T)
    assert not cache.claim("long-window", expires_at=T + 900, now=T)


def test_token_cache_bound_holds_under_load() -> None:
    cache = TokenCache(capacity=10)
    for i in range(1000):
        assert cache.claim(f"t{i}", expires_at=T + 300 + i, now=T)
    assert len(cache) == 10
    assert not cache.claim("t999", expires_at=T + 1299, now=T)  # the latest-expiring are kept
    assert cache.claim("t0", expires_at=T + 300, now=T)


# --- 3. configuration ----------------------------------------------------------------------------


def test_needs_a_signing_key() -> None:
    with pytest.raises(ValidationError, match="secrets"):
        MailgunSource.model_validate({"name": "mg", "provider": "mailgun"})
    with pytest.raises(ConfigError, match="secrets: this provider needs at least one secret"):
        config.parse_source({"name": "mg", "provider": "mailgun"})


def test_options_default() -> None:
    assert source().options.replay_cache_size == 50_000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"replay_cache": 5}, "options.replay_cache: unknown key"),
        ({"replay_cache_size": 0}, "options.replay_cache_size"),
    ],
)
def test_options_validated(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.parse_source(source_tree() | {"options": options})
    with pytest.raises(ValidationError):
        MailgunSource.model_validate(source_tree() | {"options": options})


# --- 4. normaliser -------------------------------------------------------------------------------


def test_fixtures_cover_the_mailgun_vocabulary() -> None:
    events = {json.loads(path.read_bytes())["event-data"]["event"] for path in FIXTURE_FILES}
    wanted = {"accepted", "delivered", "failed", "rejected", "opened", "clicked", "unsubscribed", "complained"}
    assert wanted <= events


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    data = payload["event-data"]
    message_id = data.get("message", {}).get("headers", {}).get("message-id")
    event = normalise(text.encode())
    assert (event.event_id, event.message_id, event.key, event.recipient, event.provider_event) == (
        payload["signature"]["token"], message_id, message_id, data.get("recipient"), data["event"]
    )  # fmt: skip
    assert event.occurred_at == datetime.fromtimestamp(data["timestamp"], UTC)
    assert (event.raw, event.provider, event.source, event.channel, event.received_at) == (
        text, "mailgun", "mg-prod", "email", RECEIVED
    )  # fmt: skip
    assert event.tags == tuple(data.get("tags") or ())
    assert event.attempt == data.get("delivery-status", {}).get("attempt-no")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert fits_schema(normalise(path.read_bytes()))


EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "accepted.json": (
        "message.created",
        {
            "subject": "Sample webhook payload",
            "from_address": "sender@sample.mailgun.com",
            "from_name": "Sample Sender",
            "to": ["recipient@sample.mailgun.com"],
            "cc": [],
            "bcc": [],
            "reply_to": None,
        },
    ),
    "delivered.json": (
        "message.delivered",
        {"reason": None, "smtp_status_code": 250, "smtp_enhanced_status_code": None, "smtp_response": "OK"},
    ),
    "delivered-legacy-shape.json": (
        "message.delivered",
        {"reason": None, "smtp_status_code": None, "smtp_enhanced_status_code": None, "smtp_response": None},
    ),
    "failed-permanent.json": (
        "message.hard_bounced",
        {
            "reason": "bounce",
            "smtp_status_code": 550,
            "smtp_enhanced_status_code": "5.1.1",
            "smtp_response": "5.1.1 The email account that you tried to reach does not exist. Please try\n"
            "5.1.1 double-checking the recipient's email address for typos",
        },
    ),
    "failed-temporary.json": (
        "message.soft_bounced",
        {
            "reason": "generic",
            "smtp_status_code": 498,
            "smtp_enhanced_status_code": None,
            "smtp_response": "No MX for nomx.example.com",
        },
    ),
    "failed-greylisted.json": (
        "message.soft_bounced",
        {
            "reason": "greylisted",
            "smtp_status_code": 450,
            "smtp_enhanced_status_code": None,
            "smtp_response": "Recipient address rejected: Greylisted",
        },
    ),
    "rejected.json": (
        "message.failed",
        {
            "reason": "Sandbox subdomains are for test purposes only.",
            "smtp_status_code": None,
            "smtp_enhanced_status_code": None,
            "smtp_response": None,
        },
    ),
    "opened.json": (
        "message.opened",
        {
            "subject": None,
            "first": None,
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6)...",
            "client_name": "Chrome",
            "client_type": "browser",
            "device_type": "desktop",
            "is_bot": None,
            "ip": "203.0.113.111",
        },
    ),
    "clicked.json": (
        "message.clicked",
        {
            "subject": None,
            "first": None,
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148",
            "client_name": "Mobile Safari",
            "client_type": "mobile browser",
            "device_type": "mobile",
            "is_bot": None,
            "ip": "203.0.113.111",
            "url": "https://example.com/test",
            "link_index": None,
        },
    ),
    "unsubscribed.json": ("message.unsubscribed", {}),
    "complained.json": ("message.spam_complaint", {}),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == [path.name for path in FIXTURE_FILES]


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_fixture_type_and_details(name: str, expected: tuple[str, dict[str, Any]]) -> None:
    event = fixture(name)
    assert (event.event_type, dict(event.details)) == expected


def test_metadata_stringified() -> None:
    assert dict(fixture("clicked.json").metadata) == {
        "cohort": "2018-08-B",
        "order": '{"id":1234,"items":["starter"]}',
        "vip": "true",
    }
    assert dict(fixture("opened.json").metadata) == {"cohort": "2018-08-B", "user_id": "123456"}


def test_user_variables_as_empty_list_is_no_metadata() -> None:
    assert dict(fixture("accepted.json").metadata) == {}


def test_occurred_at_keeps_the_fraction() -> None:
    assert fixture("delivered.json").occurred_at == datetime(2018, 8, 12, 21, 17, 17, 153125, tzinfo=UTC)


def data(**fields: object) -> dict[str, object]:
    return {key: value for key, value in (EVENT_DATA | fields).items() if value is not None}


@pytest.mark.parametrize(
    ("event_data", "provider_event"),
    [
        pytest.param(data(event="stored"), "stored", id="stored"),
        pytest.param(data(event="list_member_uploaded"), "list_member_uploaded", id="list-event"),
        pytest.param(data(event="failed", severity="fatal"), "failed", id="failed-unknown-severity"),
        pytest.param(data(event="failed"), "failed", id="failed-no-severity"),
        pytest.param(data(event="permanent_fail"), "permanent_fail", id="webhook-name-not-event-name"),
    ],
)
def test_unknown_event_is_unmapped(event_data: dict[str, object], provider_event: str) -> None:
    event = normalise(signed(data=event_data))
    assert (event.event_type, event.provider_event, event.key, dict(event.details)) == (
        UNMAPPED, provider_event, "m1@example.com", {}
    )  # fmt: skip
    assert fits_schema(event)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="array"),
        pytest.param(json.dumps({"signature": block()}).encode(), id="no-data"),
        pytest.param(signed(data=[]), id="data-array"),
        pytest.param(signed(data=data(event=None)), id="no-event"),
        pytest.param(signed(data=data(event="")), id="empty-event"),
        pytest.param(signed(data=data(event=7)), id="numeric-event"),
        pytest.param(signed(data=data(timestamp=None)), id="no-timestamp"),
        pytest.param(signed(data=data(timestamp="1700000000.25")), id="string-timestamp"),
        pytest.param(signed(data=data(timestamp=True)), id="boolean-timestamp"),
        pytest.param(signed(data=data(timestamp=1e20)), id="timestamp-out-of-range"),
        pytest.param(signed(data=data(timestamp=float("nan"))), id="timestamp-nan"),
        pytest.param(envelope({"timestamp": str(T)}), id="no-token"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(body)


def test_without_a_message_id_the_key_is_the_token() -> None:
    event = normalise(signed(data=data(message=None)))
    assert (event.message_id, event.key, event.event_id) == (None, TOKEN, TOKEN)


@pytest.mark.parametrize(
    ("status", "code", "enhanced"),
    [
        ({"code": "550", "message": "No such user"}, 550, None),
        ({"code": 550, "enhanced-code": "5.1.1", "message": "No such user"}, 550, "5.1.1"),
        ({"code": "5.1.1", "message": "RESOLVER.ADR.RecipNotFound; not found"}, None, "5.1.1"),
        ({"code": 452, "message": "4.2.2 The email account is over quota"}, 452, "4.2.2"),
        ({"code": 0, "message": "1.2.3.4 is our IP"}, None, None),
        ({"code": 1000, "message": "5.1.10 Recipient not found"}, None, "5.1.10"),
        ({"code": True, "message": "5.1.1.1 not a code"}, None, None),
    ],
)
def test_smtp_codes(status: dict[str, object], code: int | None, enhanced: str | None) -> None:
    details = normalise(signed(data=data(event="failed", severity="permanent", **{"delivery-status": status}))).details
    assert (details["smtp_status_code"], details["smtp_enhanced_status_code"]) == (code, enhanced)


@pytest.mark.parametrize(("attempt", "expected"), [(3, 3), (0, None), (2**31, None), ("2", None), (True, None)])
def test_attempt_from_delivery_status(attempt: object, expected: int | None) -> None:
    event = normalise(signed(data=data(**{"delivery-status": {"attempt-no": attempt}})))
    assert event.attempt == expected
    assert fits_schema(event)


def test_created_reads_the_message_headers() -> None:
    headers = {
        "message-id": "m1@example.com",
        "from": '"Acme, Inc." <updates@acme.example>',
        "to": "Jane Doe <jane@example.com>, bob@example.com",
        "cc": "carol@example.com",
        "reply-to": "help@acme.example",
        "subject": "Welcome",
    }
    event = normalise(signed(data=data(event="accepted", message={"headers": headers})))
    assert dict(event.details) == {
        "subject": "Welcome",
        "from_address": "updates@acme.example",
        "from_name": "Acme, Inc.",
        "to": ["jane@example.com", "bob@example.com"],
        "cc": ["carol@example.com"],
        "bcc": [],
        "reply_to": "help@acme.example",
    }


def test_rejected_falls_back_to_the_description() -> None:
    event = normalise(signed(data=data(event="rejected", reject={"reason": "", "description": "Domain not found"})))
    assert event.details["reason"] == "Domain not found"


def test_non_string_tags_are_stringified() -> None:
    assert normalise(signed(data=data(tags=["a", 7, {"b": 1}]))).tags == ("a", "7", '{"b":1}')


# --- 5. sender: sign, sign_body, example ---------------------------------------------------------

SENDABLE = [
    "message.created",
    "message.delivered",
    "message.hard_bounced",
    "message.soft_bounced",
    "message.failed",
    "message.opened",
    "message.clicked",
    "message.unsubscribed",
    "message.spam_complaint",
]


def test_sign_body_computes_mailguns_signature() -> None:
    body = sign_body(envelope({"timestamp": "1", "token": TOKEN, "signature": ""}), KEY, T + 0.9)
    assert json.loads(body)["signature"] == {"timestamp": str(T), "token": TOKEN, "signature": DIGEST}


def test_sign_body_makes_a_token_where_there_is_none() -> None:
    signature = json.loads(sign_body(envelope(None), KEY, T))["signature"]
    assert len(signature["token"]) == 50
    assert signature["signature"] == hex_hmac(KEY, T, signature["token"])


def test_sign_signs_in_the_body_with_the_first_key_and_answers_content_type() -> None:
    unsigned = envelope({"timestamp": "1", "token": TOKEN, "signature": ""})
    body, headers = SENDER.sign(unsigned, source(KEY, OTHER), T)
    assert headers == {"Content-Type": "application/json"}  # no signature header: Mailgun sends none
    assert json.loads(body)["signature"] == {"timestamp": str(T), "token": TOKEN, "signature": DIGEST}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(SENDER.example("message.delivered", NOW_DT), id="unsigned-example"),
        pytest.param(signed(OTHER), id="signed-with-another-key"),
    ],
)
def test_sign_makes_any_body_authentic_in_the_body_not_the_headers(body: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify(body, now=NOW)
    signed_body, _ = SENDER.sign(body, source(), NOW)
    verify(signed_body, now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[]"], ids=["not-json", "array"])
def test_sign_needs_a_json_object_body(body: bytes) -> None:
    with pytest.raises(ValueError, match="mailgun signs inside a JSON object body"):
        SENDER.sign(body, source(), T)


@pytest.mark.parametrize("event_type", SENDABLE)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    mailgun = Mailgun()
    body, headers = SENDER.sign(SENDER.example(event_type, NOW_DT), source(), NOW)
    assert headers == {"Content-Type": "application/json"}
    verify(body, now=NOW, provider=mailgun)
    event = normalise(body)
    assert (event.event_type, event.occurred_at, event.event_id) == (
        event_type, NOW_DT, json.loads(body)["signature"]["token"]
    )  # fmt: skip
    assert fits_schema(event)


def test_example_is_unsigned() -> None:
    with pytest.raises(SignatureInvalid):
        verify(SENDER.example("message.delivered", NOW_DT), now=NOW)


def test_example_of_a_type_mailgun_lacks() -> None:
    with pytest.raises(ValueError, match=re.escape("mailgun sends no 'message.sent'")):
        SENDER.example("message.sent", NOW_DT)


def test_examples_are_fresh_deliveries() -> None:
    first, second = (normalise(SENDER.example("message.delivered", NOW_DT)) for _ in range(2))
    assert first.event_id != second.event_id
    assert first.message_id != second.message_id


@pytest.mark.parametrize(
    ("body", "now", "reason"),
    [
        pytest.param(envelope(None), T, "malformed_body", id="no-signature-object"),
        pytest.param(b"not json", T, "malformed_body", id="not-json"),
        pytest.param(envelope(block() | {"signature": "g" + DIGEST[1:]}), T, "malformed_body", id="non-hex"),
        pytest.param(signed(timestamp="17e8"), T, "malformed_body", id="non-numeric-timestamp"),
        pytest.param(signed(OTHER), T, "no_matching_signature", id="wrong-key"),
        pytest.param(envelope(block() | {"token": TOKEN[:-1] + "5"}), T, "no_matching_signature", id="tampered"),
        pytest.param(signed(), T + 301, "stale_timestamp", id="stale"),
    ],
)
def test_reasons(body: bytes, now: float, reason: str) -> None:
    """Mailgun signs inside the body, so no header can be missing: a missing signature is malformed_body."""
    with pytest.raises(SignatureInvalid) as caught:
        verify(body, now)
    assert caught.value.reason == reason


def test_a_replay_has_its_own_reason() -> None:
    mailgun = Mailgun()
    verify(signed(), provider=mailgun)
    with pytest.raises(SignatureInvalid) as caught:
        verify(signed(), provider=mailgun)
    assert caught.value.reason == "replayed"
