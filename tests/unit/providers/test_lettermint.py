"""Lettermint provider: signature verification, SDK agreement, payload mapping (docs/providers.md, Lettermint)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lettermint.webhook
import pytest
from lettermint.exceptions import WebhookVerificationError
from lettermint.webhook import Webhook

from bridge.errors import PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import EVENT_TYPES, UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.lettermint import Lettermint, LettermintSender, LettermintSource, signature_headers
from tests.support import providers as helpers
from tests.support.providers import TOLERANCES, Pairs, file_name, fits_schema, fixture_files, is_fresh, raw

LETTERMINT = Lettermint()
SENDER = LettermintSender()
FIXTURES = helpers.FIXTURES / "lettermint"
FIXTURE_FILES = fixture_files("lettermint")

# The test vector in docs/providers.md (Lettermint), derived from the documented scheme.
SECRET = "whsec_test-webhook-secret"
T = 1700000000
BODY_TEXT = '{"id":"d1","event":"message.delivered","timestamp":"2023-11-14T22:13:20Z","data":{"subject":"Hello 🌍"}}'
BODY = BODY_TEXT.encode("utf-8")
DIGEST = "e416086190499907804f18b22ff020fd47cf775d8db7292b060d38577974583d"
OTHER = "whsec_some-other-secret"

RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)
NOW_DT = datetime(2025, 8, 8, 20, 15, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())


# --- helpers -------------------------------------------------------------------------------------


def hex_hmac(secret: str, t: int | str, body: bytes = BODY) -> str:
    """Computed here, independently of the provider module."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def signed(signature: str, delivery: str = str(T)) -> Pairs:
    return raw(("X-Lettermint-Signature", signature), ("X-Lettermint-Delivery", delivery))


def v1(secret: str = SECRET, t: int = T, body: bytes = BODY) -> Pairs:
    return signed(f"t={t},v1={hex_hmac(secret, t, body)}", str(t))


def legacy(digest: str, t: int | str = T) -> Pairs:
    return raw(("X-Lettermint-Signature", f"sha256={digest}"), ("X-Lettermint-Timestamp", str(t)))


def source(*secrets: str, tolerance: int = 300) -> LettermintSource:
    return LettermintSource.model_validate(
        {"name": "lm", "provider": "lettermint", "secrets": list(secrets or [SECRET]), "tolerance_seconds": tolerance}
    )


def verify(pairs: Pairs, body: bytes = BODY, now: float = T, src: LettermintSource | None = None) -> None:
    LETTERMINT.verify(Headers(raw=pairs), body, src or source(), now)


def ours_accepts(pairs: Pairs, body: bytes, now: float) -> bool:
    try:
        verify(pairs, body, now)
    except SignatureInvalid:
        return False
    return True


def sdk_accepts(pairs: Pairs, body: bytes) -> bool:
    try:
        Webhook(SECRET).verify(body, pairs)
    except WebhookVerificationError:
        return False
    return True


def normalise_all(body: bytes, pairs: Pairs | None = None) -> list[CanonicalEvent]:
    headers = Headers(raw=raw(("X-Lettermint-Attempt", "3")) if pairs is None else pairs)
    return LETTERMINT.normalise(Delivery("lm-prod", "lettermint", headers, body, RECEIVED))


def normalise(body: bytes, pairs: Pairs | None = None) -> CanonicalEvent:
    [event] = normalise_all(body, pairs)
    return event


def envelope(**fields: Any) -> bytes:
    payload = {"id": "e1", "event": "message.sent", "created_at": "2025-08-08T20:15:00Z", "data": {}} | fields
    return json.dumps({key: value for key, value in payload.items() if value is not None}).encode()


def fixture(name: str) -> CanonicalEvent:
    return normalise((FIXTURES / name).read_bytes())


@pytest.fixture
def sdk_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads time.time(); pin it to NOW through the module it imported."""
    monkeypatch.setattr(lettermint.webhook, "time", SimpleNamespace(time=lambda: float(NOW)))


# --- 1. verifier ---------------------------------------------------------------------------------


def test_spec_vector_is_what_hmac_gives() -> None:
    assert (len(BODY), hex_hmac(SECRET, T)) == (106, DIGEST)


def test_spec_vector_verifies() -> None:
    verify(signed(f"t=1700000000,v1={DIGEST}", "1700000000"))


GOOD = hex_hmac(SECRET, T)
WRONG = hex_hmac(OTHER, T)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(signed(f"t={T},v1=zz,v1={GOOD}"), id="malformed-v1-skipped"),
        pytest.param(signed(f"v2=ignored, v1={'0' * 64}, t={T},v1={GOOD}, v1=malformed"), id="node-sdk-mix"),
        pytest.param(signed(f"t={T},v2={WRONG},v1={GOOD}"), id="v2-ignored"),
        pytest.param(signed(f"t={T},v1={WRONG},v1={GOOD}"), id="second-v1-matches"),
        pytest.param(signed(f"t={T},v1={GOOD},v1={WRONG}"), id="first-v1-matches"),
        pytest.param(signed(f"t={T},v1={GOOD.upper()}"), id="uppercase-hex"),
        pytest.param(signed(f" t={T} , v1={GOOD} ", f" {T} "), id="spaces"),
        pytest.param(legacy(GOOD), id="legacy"),
        pytest.param(legacy(GOOD.upper()), id="legacy-uppercase"),
    ],
)
def test_accepts(pairs: Pairs) -> None:
    verify(pairs)


@pytest.mark.parametrize(
    ("pairs", "body"),
    [
        pytest.param(v1(), BODY.replace(b'"d1"', b'"d2"'), id="tampered-body"),
        pytest.param(v1(), BODY[:-1] + b" ", id="tampered-last-byte"),
        pytest.param(v1(OTHER), BODY, id="wrong-secret"),
        pytest.param(v1(SECRET.removeprefix("whsec_")), BODY, id="secret-without-prefix"),
        pytest.param(raw(("X-Lettermint-Delivery", str(T))), BODY, id="no-signature-header"),
        pytest.param(raw(("X-Lettermint-Signature", f"t={T},v1={GOOD}")), BODY, id="no-delivery-header"),
        pytest.param(signed(f"t={T},v1={GOOD}", str(T + 1)), BODY, id="delivery-not-t"),
        pytest.param(signed(f"t={T},v1={GOOD}", ""), BODY, id="delivery-empty"),
        pytest.param(v1()[:1] + v1(), BODY, id="duplicate-signature-header"),
        pytest.param(v1() + v1()[1:], BODY, id="duplicate-delivery-header"),
        pytest.param(signed(f"t={T},t={T},v1={GOOD}"), BODY, id="two-t"),
        pytest.param(signed(f"v1={GOOD}"), BODY, id="no-t"),
        pytest.param(signed(f"t={T}"), BODY, id="no-v1"),
        pytest.param(signed(f"t={T},v1={GOOD[:-1]}"), BODY, id="only-malformed-v1"),
        pytest.param(signed(f"t={T},v2={GOOD}"), BODY, id="only-v2"),
        pytest.param(signed(f"t={T},v1=\u00e9{GOOD[1:]}"), BODY, id="non-ascii-v1"),
        pytest.param(signed(f"t=17e8,v1={hex_hmac(SECRET, '17e8')}", "17e8"), BODY, id="non-numeric-t"),
        pytest.param(signed(f"t=-{T},v1={hex_hmac(SECRET, f'-{T}')}", f"-{T}"), BODY, id="negative-t"),
        pytest.param(legacy(WRONG), BODY, id="legacy-wrong-secret"),
        pytest.param(legacy(GOOD), BODY + b" ", id="legacy-tampered"),
        pytest.param(legacy(GOOD)[:1], BODY, id="legacy-no-timestamp"),
        pytest.param(legacy(hex_hmac(SECRET, "1.7e9"), "1.7e9"), BODY, id="legacy-non-numeric-t"),
    ],
)
def test_rejects(pairs: Pairs, body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body)
    assert type(caught.value) is SignatureInvalid  # not reported as a clock problem


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_within_tolerance(skew: int) -> None:
    verify(v1(), now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
@pytest.mark.parametrize("pairs", [v1(), legacy(GOOD)], ids=["v1", "legacy"])
def test_outside_tolerance_is_stale(pairs: Pairs, skew: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(pairs, now=T + skew)


def test_stale_is_a_signature_failure() -> None:
    assert issubclass(StaleTimestamp, SignatureInvalid)


def test_stale_only_reported_for_authentic_deliveries() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(v1(OTHER), now=T + 3600)
    assert type(caught.value) is SignatureInvalid


def ours_accepts_with(src: LettermintSource, now: float) -> bool:
    return is_fresh(lambda: verify(v1(), now=now, src=src))


@pytest.mark.parametrize(("tolerance", "skew", "ok"), TOLERANCES)
def test_tolerance_per_source(tolerance: int, skew: int, ok: bool) -> None:
    assert ours_accepts_with(source(tolerance=tolerance), T + skew) is ok


ROTATING = source("whsec_old-secret", "whsec_new-secret")


@pytest.mark.parametrize("secret", ["whsec_old-secret", "whsec_new-secret"])
def test_rotation_either_secret(secret: str) -> None:
    verify(v1(secret), src=ROTATING)


def test_rotation_third_secret_rejected() -> None:
    with pytest.raises(SignatureInvalid):
        verify(v1("whsec_third-secret"), src=ROTATING)


def test_legacy_non_ascii_digest_is_signature_invalid() -> None:
    pairs = [(b"x-lettermint-signature", b"sha256=\xe9"), (b"x-lettermint-timestamp", str(T).encode())]
    with pytest.raises(SignatureInvalid):
        verify(pairs)


# --- sign ----------------------------------------------------------------------------------------


def test_sign_reproduces_spec_vector() -> None:
    assert signature_headers(BODY, SECRET, T + 0.9) == {
        "X-Lettermint-Signature": f"t={T},v1={DIGEST}",
        "X-Lettermint-Delivery": str(T),
        "X-Lettermint-Attempt": "1",
        "Content-Type": "application/json",
    }


# --- 2. differential check against the official SDK (lettermint 3.2.0) ----------------------------


@pytest.mark.usefixtures("sdk_clock")
@pytest.mark.parametrize("path", [None, *FIXTURE_FILES], ids=lambda p: p.name if p else "docs-vector")
def test_sdk_accepts_our_sign(path: Path | None) -> None:
    body = path.read_bytes() if path else BODY
    headers = signature_headers(body, SECRET, NOW)
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)


def at_now(secret: str = SECRET, t: int = NOW, body: bytes = BODY) -> Pairs:
    return v1(secret, t, body)


NOW_GOOD = hex_hmac(SECRET, NOW)
NOW_WRONG = hex_hmac(OTHER, NOW)


@pytest.mark.usefixtures("sdk_clock")
@pytest.mark.parametrize(
    ("pairs", "body", "accepted"),
    [
        pytest.param(at_now(), BODY, True, id="good"),
        pytest.param(at_now(), BODY.replace(b"Hello", b"Hallo"), False, id="tampered"),
        pytest.param(at_now(OTHER), BODY, False, id="wrong-secret"),
        pytest.param(signed(f"t={NOW},v1={NOW_GOOD}", str(NOW - 1)), BODY, False, id="mismatched-delivery"),
        pytest.param(raw(("X-Lettermint-Signature", f"t={NOW},v1={NOW_GOOD}")), BODY, False, id="no-delivery"),
        pytest.param(signed(f"t={NOW},v1={NOW_WRONG},v1={NOW_GOOD}", str(NOW)), BODY, True, id="multi-v1-good"),
        pytest.param(signed(f"t={NOW},v1={NOW_WRONG},v1={'f' * 64}", str(NOW)), BODY, False, id="multi-v1-bad"),
        pytest.param(signed(f"t={NOW},v1=xyz,v2=abc,v1={NOW_GOOD}", str(NOW)), BODY, True, id="malformed-and-v2"),
        pytest.param(signed(f"t={NOW},v1={NOW_GOOD.upper()}", str(NOW)), BODY, True, id="uppercase"),
        pytest.param(signed(f"t={NOW},t={NOW},v1={NOW_GOOD}", str(NOW)), BODY, False, id="two-t"),
        pytest.param(at_now()[:1] + at_now(), BODY, False, id="duplicate-signature"),
        pytest.param(at_now(t=NOW - 300), BODY, True, id="300s-old"),
        pytest.param(at_now(t=NOW + 300), BODY, True, id="300s-ahead"),
        pytest.param(at_now(t=NOW - 301), BODY, False, id="301s-old"),
        pytest.param(at_now(t=NOW + 301), BODY, False, id="301s-ahead"),
    ],
)
def test_agrees_with_sdk(pairs: Pairs, body: bytes, accepted: bool) -> None:
    assert (ours_accepts(pairs, body, NOW), sdk_accepts(pairs, body)) == (accepted, accepted)


# --- 3./4. normaliser ----------------------------------------------------------------------------


def test_fixtures_cover_the_lettermint_vocabulary() -> None:
    events = {json.loads(path.read_bytes())["event"] for path in FIXTURE_FILES}
    wanted = {"message.opened", "message.clicked", "message.policy_rejected", "message.suppressed"}
    wanted |= {"message.unsubscribed", "message.inbound", "message.scheduled", "suppression.added"}
    wanted |= {"suppression.removed", "message.created", "message.hard_bounced", "webhook.test"}
    assert wanted <= events


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    data = payload["data"]
    [event] = normalise_all(text.encode())
    assert event.key == (data.get("message_id") or data.get("value") or data.get("webhook_id"))
    assert (event.event_type, event.provider_event, event.event_id, event.message_id, event.recipient) == (
        payload["event"], payload["event"], payload["id"], data.get("message_id"), data.get("recipient")
    )  # fmt: skip
    assert event.occurred_at == datetime.fromisoformat(payload.get("timestamp") or payload["created_at"])
    assert (event.raw, event.provider, event.source, event.attempt, event.channel, event.received_at) == (
        text, "lettermint", "lm-prod", 3, "email", RECEIVED
    )  # fmt: skip
    assert event.tags == ((data["tag"],) if data.get("tag") else ())


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert fits_schema(normalise(path.read_bytes()))


DETAILS = {
    "message.hard_bounced.json": {
        "reason": None,
        "smtp_status_code": 550,
        "smtp_enhanced_status_code": "5.1.1",
        "smtp_response": "The email account that you tried to reach does not exist.",
    },
    "message.soft_bounced.json": {
        "reason": None,
        "smtp_status_code": 452,
        "smtp_enhanced_status_code": "4.2.2",
        "smtp_response": "The email account that you tried to reach is over quota.",
    },
    "message.failed.json": {
        "reason": "A network error occurred.",
        "smtp_status_code": 250,
        "smtp_enhanced_status_code": None,
        "smtp_response": None,
    },
    "message.created.json": {
        "subject": "Welcome to Acme",
        "from_address": "updates@acme.com",
        "from_name": "Acme Updates",
        "to": ["user@example.com"],
        "cc": ["cc@example.com"],
        "bcc": ["bcc@example.com"],
        "reply_to": "help@acme.com",
    },
    "message.sent.json": {"subject": None},
    "message.spam_complaint.json": {},
    "webhook.test.json": {
        "webhook_id": "9f9bf19c-4a2c-45f3-a6c7-bc937224ec5a",
        "test_message": "This is a test webhook from Lettermint",
    },
    "message.opened.json": {
        "subject": "Welcome to Acme",
        "first": True,
        "user_agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "client_name": "Gmail",
        "client_type": "webmail",
        "device_type": "desktop",
        "is_bot": True,
    },
    "message.clicked.json": {
        "subject": "Welcome to Acme",
        "first": False,
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        "client_name": "Apple Mail",
        "client_type": "mobile",
        "device_type": "mobile",
        "is_bot": False,
        "url": "https://acme.com/onboarding?step=2&utm_source=email",
        "link_index": 1,
    },
    "message.policy_rejected.json": {
        "subject": "You have WON a free cruise!!!",
        "reason": "The message was rejected by the outbound spam filter.",
        "spam_score": 15.3,
        "spam_symbols": ["BAYES_99", "URIBL_BLACK", "SUBJ_ALL_CAPS"],
    },
    "message.suppressed.json": {"reason": "hard_bounce"},
    "message.unsubscribed.json": {},
    "message.scheduled.json": {},
    "message.inbound.json": {
        "subject": "Re: Order #1234",
        "from_address": "jane@customer.example",
        "to": ["support@inbound.acme.com"],
        "route": "support-inbox",
        "is_spam": False,
        "spam_score": 0.4,
    },
    "suppression.added.json": {"suppression_type": "email", "value": "bounced@example.com", "reason": "hard_bounce"},
    "suppression.removed.json": {"suppression_type": "domain", "value": "old-partner.example", "reason": "manual"},
}


@pytest.mark.parametrize(("name", "details"), DETAILS.items(), ids=list(DETAILS))
def test_fixture_details(name: str, details: dict[str, Any]) -> None:
    assert dict(fixture(name).details) == details


MESSAGE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


@pytest.mark.parametrize(
    ("name", "key", "occurred_at"),
    [
        ("message.hard_bounced.json", MESSAGE_ID, datetime(2025, 8, 8, 20, 15, 30, tzinfo=UTC)),
        ("message.opened.json", MESSAGE_ID, datetime(2025, 8, 8, 21, 2, 11, tzinfo=UTC)),
        ("webhook.test.json", "9f9bf19c-4a2c-45f3-a6c7-bc937224ec5a", datetime(2025, 8, 8, 20, 14, 12, tzinfo=UTC)),
        ("suppression.added.json", "bounced@example.com", datetime(2025, 8, 8, 20, 15, 31, tzinfo=UTC)),
        ("suppression.removed.json", "old-partner.example", datetime(2025, 8, 10, 9, 0, tzinfo=UTC)),
    ],
)
def test_fixture_key_and_time(name: str, key: str, occurred_at: datetime) -> None:
    event = fixture(name)
    assert (event.key, event.occurred_at) == (key, occurred_at)


def test_metadata_stringified_and_tag() -> None:
    event = fixture("message.clicked.json")
    assert dict(event.metadata) == {
        "customer_id": "cus_8f3k2",
        "order": '{"id":1234,"items":["starter","addon-sms"]}',
        "vip": "true",
    }
    assert event.tags == ("onboarding",)


def test_unknown_event_is_unmapped() -> None:
    event = normalise(envelope(event="message.teleported", data={"message_id": "m1", "planet": "Mars"}))
    assert (event.event_type, event.provider_event, event.key, dict(event.details)) == (
        UNMAPPED, "message.teleported", "m1", {}
    )  # fmt: skip
    assert fits_schema(event)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"event":"message.sent"}]', id="array"),
        pytest.param(envelope(event=None), id="no-event"),
        pytest.param(envelope(event=""), id="empty-event"),
        pytest.param(envelope(event=42), id="numeric-event"),
        pytest.param(envelope(data=[]), id="data-array"),
        pytest.param(envelope(data="x"), id="data-string"),
        pytest.param(envelope(data=None), id="no-data"),
        pytest.param(envelope(created_at=None), id="no-timestamp"),
        pytest.param(envelope(created_at="2025-08-08T20:15:00"), id="naive-created_at"),
        pytest.param(envelope(timestamp="2025-08-08T20:15:00.000"), id="naive-timestamp"),
        pytest.param(envelope(created_at="yesterday"), id="bad-timestamp"),
        pytest.param(envelope(created_at=1754921294), id="unix-number"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(body)


def test_missing_id_is_derived_deterministically() -> None:
    body = envelope(id=None, data={"message_id": "m1"})
    first, second = normalise(body), normalise(body)
    other = normalise(envelope(id=None, data={"message_id": "m2"}))
    assert first.event_id == second.event_id != other.event_id
    assert first.event_id and first.key == "m1"


def test_missing_id_and_message_id_keys_on_derived_id() -> None:
    event = normalise(envelope(id=None))
    assert event.key == event.event_id


@pytest.mark.parametrize(
    ("fields", "occurred_at"),
    [
        ({"timestamp": "2025-08-08T20:14:00.000Z"}, datetime(2025, 8, 8, 20, 14, tzinfo=UTC)),
        ({"timestamp": "2025-08-08T22:14:00+02:00", "created_at": None}, datetime(2025, 8, 8, 20, 14, tzinfo=UTC)),
        ({"created_at": "2025-08-08T20:15:00Z"}, datetime(2025, 8, 8, 20, 15, tzinfo=UTC)),
    ],
)
def test_timestamp_preferred_over_created_at(fields: dict[str, Any], occurred_at: datetime) -> None:
    assert normalise(envelope(**fields)).occurred_at == occurred_at


@pytest.mark.parametrize(("value", "attempt"), [(None, None), ("1", 1), ("12", 12), ("abc", None), ("", None)])
def test_attempt_header(value: str | None, attempt: int | None) -> None:
    pairs = raw(("X-Lettermint-Attempt", value)) if value is not None else []
    assert normalise(envelope(), pairs).attempt == attempt


def test_attempt_superscript_digit_is_ignored() -> None:
    assert normalise(envelope(), [(b"x-lettermint-attempt", b"\xb2")]).attempt is None


def test_huge_attempt_still_fits_schema() -> None:
    assert fits_schema(normalise(envelope(), raw(("X-Lettermint-Attempt", "3000000000"))))


def test_utf16_body_is_payload_invalid() -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(envelope().decode().encode("utf-16"))


def test_numeric_webhook_id_is_the_key() -> None:
    event = normalise(envelope(event="webhook.test", data={"message": "hi", "webhook_id": 42}))
    assert event.key == "42"


# --- 5. example() --------------------------------------------------------------------------------

SENDABLE = [event_type for event_type in EVENT_TYPES if event_type != UNMAPPED]


@pytest.mark.parametrize("event_type", SENDABLE)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    body = SENDER.example(event_type, NOW_DT)
    headers = signature_headers(body, SECRET, NOW)
    pairs = raw(*headers.items())
    verify(pairs, body, now=NOW)
    event = normalise(body, pairs)
    assert (event.event_type, event.occurred_at, event.attempt) == (event_type, NOW_DT, 1)
    assert fits_schema(event)


def test_example_webhook_test_keys_on_webhook_id() -> None:
    event = normalise(SENDER.example("webhook.test", NOW_DT))
    assert event.event_id.startswith("test-")
    assert event.key == event.details["webhook_id"]


def test_examples_are_fresh_deliveries() -> None:
    first, second = (normalise(SENDER.example("message.delivered", NOW_DT)) for _ in range(2))
    assert first.event_id != second.event_id


@pytest.mark.parametrize(
    ("pairs", "body", "now", "reason"),
    [
        pytest.param(raw(("X-Lettermint-Delivery", str(T))), BODY, T, "missing_header", id="no-signature-header"),
        pytest.param(v1()[:1] + v1(), BODY, T, "malformed_header", id="duplicate-header"),
        pytest.param(signed(f"t={T}"), BODY, T, "malformed_header", id="no-v1"),
        pytest.param(signed(f"t={T},v1={GOOD}", str(T + 1)), BODY, T, "malformed_header", id="delivery-not-t"),
        pytest.param(v1(OTHER), BODY, T, "no_matching_signature", id="wrong-secret"),
        pytest.param(v1(), BODY + b" ", T, "no_matching_signature", id="tampered-body"),
        pytest.param(v1(), BODY, T + 301, "stale_timestamp", id="stale"),
        pytest.param(v1(OTHER), BODY, T + 3600, "no_matching_signature", id="stale-forgery"),
    ],
)
def test_reasons(pairs: Pairs, body: bytes, now: float, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body, now)
    assert caught.value.reason == reason
