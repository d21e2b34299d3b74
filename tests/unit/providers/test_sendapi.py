"""SendAPI provider: `sha256=<hex>` body signatures, key forms, rotation, payload mapping
(docs/providers.md#sendapi-sendapi)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers.base import ProviderIO
from bridge.providers.sendapi import SendAPI, SendAPISender, SendAPISource, signature_headers
from tests.support import providers as helpers
from tests.support.providers import Pairs, file_name, fits_schema, fixture_files, raw

SENDAPI = SendAPI()
SENDER = SendAPISender()
FIXTURES = helpers.FIXTURES / "sendapi"
FIXTURE_FILES = fixture_files("sendapi")

# The docs' email.bounced example (fixture, verbatim: 213 bytes with its line break), signed with
# SECRET. DIGEST computed outside Python: `openssl dgst -sha256 -hmac "$SECRET"` and node's
# `crypto.createHmac('sha256', secret)` (what the docs' example does) agree on it.
SECRET = "whsec_test-sendapi-secret"
BODY = (FIXTURES / "email.bounced.json").read_bytes()
DIGEST = "0039a4040545c9c225a6e86fe0625d0f60a01537a4caf036b461ff64ab157f31"
OTHER = "whsec_some-other-secret"

# A hex secret of the docs' shape (`whsec_a7c8d9e0f1…`): the whole string, or its hex-decoded suffix,
# may be the key (unconfirmed, see docs/providers.md). openssl `-hmac "$HEX_SECRET"` and
# `-macopt hexkey:<suffix>` respectively.
HEX_SECRET = "whsec_7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e8b4d6a0f3c9e7b1d5a2f8c4e6b0d9a3f"
HEX_AS_IS_DIGEST = "aef8438bf424b7510ab9220b53893793738de783cccc6a55408afbf55db7ec55"
HEX_DECODED_DIGEST = "1604c8b8452fc7d8f6b51fc44c59ab20cadfa42b53e1fabd2d5490fe321e256d"

T = 1773066610.0  # 2026-03-09T14:30:10Z, the example's time
RECEIVED = datetime(2026, 3, 9, 14, 30, 11, tzinfo=UTC)
NOW_DT = datetime(2026, 3, 9, 15, 0, 0, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------------------


def hex_hmac(key: str | bytes, body: bytes = BODY) -> str:
    """Computed here, independently of the provider module."""
    return hmac.new(key.encode() if isinstance(key, str) else key, body, hashlib.sha256).hexdigest()


def signed(value: str) -> Pairs:
    return raw(("X-SendAPI-Signature", value))


def sha256(key: str | bytes = SECRET, body: bytes = BODY) -> Pairs:
    return signed(f"sha256={hex_hmac(key, body)}")


def source(*secrets: str, **extra: Any) -> SendAPISource:
    return SendAPISource.model_validate(
        {"name": "sa", "provider": "sendapi", "secrets": list(secrets or [SECRET]), **extra}
    )


def verify(pairs: Pairs, body: bytes = BODY, src: SendAPISource | None = None, now: float = T) -> None:
    SENDAPI.verify(Headers(raw=pairs), body, src or source(), now)


def normalise(body: bytes) -> CanonicalEvent:
    [event] = SENDAPI.normalise(Delivery("sendapi-prod", "sendapi", Headers(), body, RECEIVED))
    return event


def envelope(event: Any = "sms.sent", data: Any = None, **fields: Any) -> bytes:
    payload = {"event": event, "timestamp": "2026-03-09T14:30:00Z", "data": {} if data is None else data} | fields
    return json.dumps({key: value for key, value in payload.items() if value is not None}).encode()


def fixture(name: str) -> CanonicalEvent:
    return normalise((FIXTURES / name).read_bytes())


# --- 1. verifier ---------------------------------------------------------------------------------


def test_vector_is_what_hmac_gives() -> None:
    assert (len(BODY), hex_hmac(SECRET)) == (213, DIGEST)


def test_vector_verifies() -> None:
    verify(signed(f"sha256={DIGEST}"))


def test_registered_under_its_name() -> None:
    assert PROVIDERS["sendapi"].source is SendAPISource
    assert isinstance(PROVIDERS["sendapi"].build(ProviderIO.default()), SendAPI)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"sha256={DIGEST.upper()}", id="uppercase-hex"),
        pytest.param(f" sha256={DIGEST} ", id="surrounding-spaces"),
    ],
)
def test_accepts(value: str) -> None:
    verify(signed(value))


REJECTED = [
    pytest.param(sha256(), BODY.replace(b"invalid@", b"attacker@"), id="tampered-body"),
    pytest.param(sha256(), BODY[:-1] + b"]", id="tampered-last-byte"),
    pytest.param(sha256(), BODY + b"\n", id="appended-newline"),
    # The body parsed and re-serialised is the same JSON but not the signed bytes.
    pytest.param(sha256(body=json.dumps(json.loads(BODY)).encode()), BODY, id="reserialised-json"),
    pytest.param(sha256(OTHER), BODY, id="wrong-secret"),
    pytest.param(sha256(SECRET.removeprefix("whsec_")), BODY, id="secret-without-prefix"),
    pytest.param([], BODY, id="no-signature-header"),
    pytest.param(signed(""), BODY, id="empty-header"),
    pytest.param(signed(DIGEST), BODY, id="no-sha256-prefix"),
    pytest.param(signed(f"sha1={DIGEST}"), BODY, id="other-prefix"),
    pytest.param(signed(f"SHA256={DIGEST}"), BODY, id="prefix-not-as-documented"),
    pytest.param(signed(f"sha256={DIGEST[:-1]}"), BODY, id="digest-too-short"),
    pytest.param(signed(f"sha256={DIGEST}0"), BODY, id="digest-too-long"),
    pytest.param(signed(f"sha256={DIGEST[:-1]}g"), BODY, id="digest-not-hex"),
    pytest.param(signed(f"sha256=\u00e9{DIGEST[1:]}"), BODY, id="non-ascii-digest"),
    pytest.param(signed(f"sha256={DIGEST},sha256={DIGEST}"), BODY, id="two-in-one-header"),
    pytest.param(sha256() + sha256(), BODY, id="duplicate-header"),
    pytest.param(signed("sha256=" + base64.b64encode(bytes.fromhex(DIGEST)).decode()), BODY, id="base64-digest"),
]


@pytest.mark.parametrize(("pairs", "body"), REJECTED)
def test_rejects(pairs: Pairs, body: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify(pairs, body)


def test_no_timestamp_is_signed_so_age_does_not_matter() -> None:
    """Documents the replay exposure: a captured delivery verifies years later (no window exists)."""
    verify(signed(f"sha256={DIGEST}"), now=T + 10 * 365 * 86_400)
    verify(signed(f"sha256={DIGEST}"), now=0)


ROTATING = source("whsec_old-secret", "whsec_new-secret")


@pytest.mark.parametrize("secret", ["whsec_old-secret", "whsec_new-secret"])
def test_rotation_either_secret(secret: str) -> None:
    verify(sha256(secret), src=ROTATING)


def test_rotation_third_secret_rejected() -> None:
    with pytest.raises(SignatureInvalid):
        verify(sha256("whsec_third-secret"), src=ROTATING)


# --- key forms (unconfirmed, see docs/providers.md) -------------------------------------------------------------------


def test_hex_vectors_are_what_hmac_gives() -> None:
    decoded = bytes.fromhex(HEX_SECRET.removeprefix("whsec_"))
    assert (hex_hmac(HEX_SECRET), hex_hmac(decoded)) == (HEX_AS_IS_DIGEST, HEX_DECODED_DIGEST)


@pytest.mark.parametrize("digest", [HEX_AS_IS_DIGEST, HEX_DECODED_DIGEST], ids=["as-is", "hex-decoded"])
def test_hex_secret_accepts_both_key_forms(digest: str) -> None:
    verify(signed(f"sha256={digest}"), src=source(HEX_SECRET))


def test_hex_decoded_form_also_under_rotation() -> None:
    verify(signed(f"sha256={HEX_DECODED_DIGEST}"), src=source(OTHER, HEX_SECRET))


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        pytest.param("whsec_00ff", b"\x00\xff", id="short-hex-not-decoded"),
        pytest.param("whsec_" + "ab" * 15 + "a", bytes.fromhex("ab" * 15 + "a0"), id="odd-length-hex"),
        pytest.param(
            "7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e", bytes.fromhex("7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e"), id="no-prefix"
        ),
        pytest.param(HEX_SECRET, base64.b64decode(HEX_SECRET.removeprefix("whsec_")), id="base64-decoded"),
    ],
)
def test_other_key_forms_rejected(secret: str, key: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify(sha256(key), src=source(secret))


# --- check ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"secrets": []}, "secrets: this provider needs at least one secret", id="no-secret"),
        pytest.param({"tolerance_seconds": 300}, "tolerance_seconds: SendAPI signs no timestamp", id="tolerance"),
        pytest.param({"options": {"replay_window": 60}}, "options.replay_window: unknown key", id="options"),
    ],
)
def test_check_rejects(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.parse_source({"name": "sa", "provider": "sendapi", "secrets": [SECRET]} | extra)


def test_check_accepts_secrets_alone() -> None:
    assert source(SECRET, OTHER).secret_values() == [SECRET, OTHER]


# --- sign ----------------------------------------------------------------------------------------


def test_sign_reproduces_the_vector() -> None:
    assert signature_headers(BODY, SECRET) == {
        "X-SendAPI-Signature": f"sha256={DIGEST}",
        "Content-Type": "application/json",
    }


def test_sender_signs_with_the_first_secret_and_leaves_the_body() -> None:
    assert SENDER.sign(BODY, source(SECRET, OTHER), T) == (BODY, signature_headers(BODY, SECRET))


# --- 2. normaliser -------------------------------------------------------------------------------

DOCUMENTED_EVENTS = {
    *("email.sent", "email.delivered", "email.opened", "email.clicked", "email.bounced", "email.complained"),
    *("sms.sent", "sms.delivered", "sms.failed", "verify.completed", "verify.expired"),
    *("message.received", "message.sent", "message.delivered", "message.read", "message.failed"),
    "session.disconnected",
}


def test_fixtures_cover_every_documented_event() -> None:
    events = {json.loads(path.read_bytes())["event"] for path in FIXTURE_FILES}
    assert events >= DOCUMENTED_EVENTS


def test_bounce_fixture_is_the_docs_example_verbatim() -> None:
    assert BODY.decode() == (
        '{"event":"email.bounced","timestamp":"2026-03-09T14:30:10Z",\n'
        ' "data":{"id":"eml_01H9...QP","to":"invalid@notadomain.xyz","bounce_type":"hard",'
        '"error":"550 5.1.1 User unknown","bounced_at":"2026-03-09T14:30:10Z"}}\n'
    )


EML, BOUNCED, SOFT = "eml_01H9V3T8K2M4N6P8R0S2T4V6WX", "eml_01H9...QP", "eml_01H9V4A1B2C3D4E5F6G7H8J9KM"
SMS, SMS_FAILED = "sms_01H9V5C7D8E9F0G1H2J3K4M5NP", "sms_01H9V6E1F2G3H4J5K6M7N8P9QR"
VER_SMS, VER_WA, VER_EXPIRED = (
    "ver_01H9V7G3H4J5K6M7N8P9Q0R1ST",
    "ver_01H9V8J5K6M7N8P9Q0R1S2T3UV",
    "ver_01H9V9K7M8N9P0Q1R2S3T4V5WX",
)
WA, WA_IN, WA_FAILED = (
    "msg_01H9VC3D4E5F6G7H8J9K0M1NPQ",
    "msg_01H9VB2C3D4E5F6G7H8J9K0MNP",
    "msg_01H9VD4E5F6G7H8J9K0M1N2PQR",
)
SESSION = "sess_8f2k1m"
JANE, PHONE, PHONE_FAILED = "jane@example.com", "+14155550132", "+14155550199"
CLICK_URL = "https://billing.example.com/invoices/2026-03?utm_source=email"

# file → (event_type, channel, key, message_id, recipient)
EXPECTED: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "email.sent.json": ("message.sent", "email", EML, EML, JANE),
    "email.delivered.json": ("message.delivered", "email", EML, EML, JANE),
    "email.opened.json": ("message.opened", "email", EML, EML, JANE),
    "email.clicked.json": ("message.clicked", "email", EML, EML, JANE),
    "email.bounced.json": ("message.hard_bounced", "email", BOUNCED, BOUNCED, "invalid@notadomain.xyz"),
    "email.bounced.soft.json": ("message.soft_bounced", "email", SOFT, SOFT, "full@example.org"),
    "email.complained.json": ("message.spam_complaint", "email", EML, EML, JANE),
    "sms.sent.json": ("message.sent", "sms", SMS, SMS, PHONE),
    "sms.delivered.json": ("message.delivered", "sms", SMS, SMS, PHONE),
    "sms.failed.json": ("message.failed", "sms", SMS_FAILED, SMS_FAILED, PHONE_FAILED),
    "verify.completed.json": ("verification.completed", "sms", VER_SMS, None, PHONE),
    "verify.completed.whatsapp.json": ("verification.completed", "whatsapp", VER_WA, None, "+447700900123"),
    "verify.expired.json": ("verification.expired", "sms", VER_EXPIRED, None, "+14155550177"),
    "message.received.json": ("message.inbound", "whatsapp", WA_IN, WA_IN, None),
    "message.sent.json": ("message.sent", "whatsapp", WA, WA, PHONE),
    "message.delivered.json": ("message.delivered", "whatsapp", WA, WA, None),
    "message.read.json": ("message.read", "whatsapp", WA, WA, None),
    "message.failed.json": ("message.failed", "whatsapp", WA_FAILED, WA_FAILED, PHONE_FAILED),
    "session.disconnected.json": ("session.disconnected", "whatsapp", SESSION, None, None),
    "session.connected.json": (UNMAPPED, "whatsapp", SESSION, None, None),
}
# Events that can repeat for one message or session carry their time (and a click its URL);
# every other fixture's event id is "<event>:<key>".
EVENT_IDS = {
    "email.bounced.json": "email.bounced:eml_01H9...QP:2026-03-09T14:30:10Z",
    "email.bounced.soft.json": f"email.bounced:{SOFT}:2026-03-09T14:35:02Z",
    "email.opened.json": f"email.opened:{EML}:2026-03-09T14:41:17Z",
    "email.clicked.json": f"email.clicked:{EML}:2026-03-09T14:41:52Z:{CLICK_URL}",
    "session.disconnected.json": f"session.disconnected:{SESSION}:2026-03-09T18:05:00Z",
    "session.connected.json": f"session.connected:{SESSION}:2026-03-09T18:20:00Z",
}


def test_expectations_cover_every_fixture() -> None:
    assert set(EXPECTED) == {path.name for path in FIXTURE_FILES}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_fixture_mapping(name: str, expected: tuple[str, str, str, str | None, str | None]) -> None:
    event = fixture(name)
    assert (event.event_type, event.channel, event.key, event.message_id, event.recipient) == expected


@pytest.mark.parametrize("name", EXPECTED, ids=list(EXPECTED))
def test_fixture_event_id(name: str) -> None:
    event = fixture(name)
    assert event.event_id == EVENT_IDS.get(name, f"{event.provider_event}:{event.key}")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    event = normalise(text.encode())
    assert (event.provider_event, event.occurred_at) == (payload["event"], datetime.fromisoformat(payload["timestamp"]))
    assert (event.raw, event.provider, event.source, event.received_at, event.attempt) == (
        text,
        "sendapi",
        "sendapi-prod",
        RECEIVED,
        None,
    )
    assert (event.tags, dict(event.metadata)) == ((), {})


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert fits_schema(normalise(path.read_bytes()))


NO_SMTP = {"smtp_status_code": None, "smtp_enhanced_status_code": None, "smtp_response": None}
OPENED = {"subject": None, "first": None, "user_agent": None, "client_name": None, "client_type": None}
OPENED |= {"device_type": None, "is_bot": None, "ip": None}

DETAILS: dict[str, dict[str, Any]] = {
    "email.sent.json": {"subject": "Your March invoice", "session_id": None},
    "email.delivered.json": {"reason": None, **NO_SMTP, "session_id": None},
    "email.opened.json": OPENED,
    "email.clicked.json": {**OPENED, "url": CLICK_URL, "link_index": None},
    "email.bounced.json": {
        "reason": None,
        "smtp_status_code": 550,
        "smtp_enhanced_status_code": "5.1.1",
        "smtp_response": "550 5.1.1 User unknown",
        "bounce_class": "hard",
    },
    "email.bounced.soft.json": {
        "reason": None,
        "smtp_status_code": 452,
        "smtp_enhanced_status_code": "4.2.2",
        "smtp_response": "452 4.2.2 Mailbox full",
        "bounce_class": "soft",
    },
    "email.complained.json": {"feedback_type": None},
    "sms.sent.json": {"subject": None, "session_id": None},
    "sms.failed.json": {"reason": "Unreachable destination handset", **NO_SMTP, "error_code": "30003"},
    "verify.completed.json": {"verification_id": "ver_01H9V7G3H4J5K6M7N8P9Q0R1ST"},
    "verify.expired.json": {"verification_id": "ver_01H9V9K7M8N9P0Q1R2S3T4V5WX"},
    "message.received.json": {
        "subject": None,
        "from_address": PHONE,
        "to": [],
        "route": None,
        "is_spam": None,
        "spam_score": None,
        "session_id": SESSION,
    },
    "message.sent.json": {"subject": None, "session_id": SESSION},
    "message.delivered.json": {"reason": None, **NO_SMTP, "session_id": SESSION},
    "message.read.json": {"session_id": SESSION},
    "message.failed.json": {"reason": "Message undeliverable", **NO_SMTP, "error_code": "131026"},
    "session.disconnected.json": {"session_id": SESSION, "reason": "logged_out"},
    "session.connected.json": {},
}


@pytest.mark.parametrize(("name", "details"), DETAILS.items(), ids=list(DETAILS))
def test_fixture_details(name: str, details: dict[str, Any]) -> None:
    assert dict(fixture(name).details) == details


BOUNCE = {"id": "eml_1", "to": "a@example.com", "bounced_at": "2026-03-09T14:30:10Z"}


@pytest.mark.parametrize(
    ("bounce_type", "event_type"),
    [
        ("hard", "message.hard_bounced"),
        ("soft", "message.soft_bounced"),
        ("SOFT", "message.soft_bounced"),
        # events.md maps email.bounced to hard_bounced; only an explicit "soft" makes it soft.
        (None, "message.hard_bounced"),
        ("undetermined", "message.hard_bounced"),
    ],
)
def test_bounce_type_decides_hard_or_soft(bounce_type: str | None, event_type: str) -> None:
    data = BOUNCE | ({"bounce_type": bounce_type} if bounce_type else {})
    event = normalise(envelope("email.bounced", data))
    assert (event.event_type, event.details["bounce_class"]) == (event_type, bounce_type)
    assert fits_schema(event)


@pytest.mark.parametrize(
    ("error", "smtp"),
    [
        ("Mailbox does not exist", {"reason": "Mailbox does not exist", **NO_SMTP}),
        (
            "550-5.7.1 Blocked",
            {
                "reason": None,
                "smtp_status_code": 550,
                "smtp_enhanced_status_code": "5.7.1",
                "smtp_response": "550-5.7.1 Blocked",
            },
        ),
        (
            "554 Transaction failed",
            {
                "reason": None,
                "smtp_status_code": 554,
                "smtp_enhanced_status_code": None,
                "smtp_response": "554 Transaction failed",
            },
        ),
        ("5501 not a reply code", {"reason": "5501 not a reply code", **NO_SMTP}),
    ],
)
def test_bounce_error_is_an_smtp_reply_or_a_reason(error: str, smtp: dict[str, Any]) -> None:
    event = normalise(envelope("email.bounced", BOUNCE | {"bounce_type": "hard", "error": error}))
    assert dict(event.details) == {**smtp, "bounce_class": "hard"}


def test_numeric_error_code_becomes_text() -> None:
    event = normalise(envelope("sms.failed", {"id": "sms_1", "error_code": 30003, "error_message": "x"}))
    assert event.details["error_code"] == "30003"
    assert fits_schema(event)


def test_whatsapp_failure_reason_field() -> None:
    event = normalise(envelope("message.failed", {"message_id": "m1", "reason": "session closed"}))
    assert (event.details["reason"], event.details["error_code"], event.channel) == ("session closed", None, "whatsapp")


@pytest.mark.parametrize(
    ("event", "stated", "channel"),
    [
        ("verify.completed", None, "sms"),
        ("verify.completed", "whatsapp", "whatsapp"),
        ("verify.expired", "EMAIL", "email"),
        ("verify.expired", "voice", "sms"),  # not a channel we publish: the default, raw keeps it
        ("message.read", "sms", "whatsapp"),  # only verify.* events state their channel
        ("sms.sent", "email", "sms"),
        ("contact.created", "sms", "sms"),  # unknown events: as stated, else the schema default
        ("contact.created", None, "email"),
    ],
)
def test_channel(event: str, stated: str | None, channel: str) -> None:
    data = {"verification_id": "v1"} | ({"channel": stated} if stated else {})
    assert normalise(envelope(event, data)).channel == channel


def test_unknown_event_is_unmapped_and_kept() -> None:
    body = envelope("message.reaction", {"message_id": "m1", "session_id": "s1", "emoji": "👍"})
    event = normalise(body)
    assert (event.event_type, event.provider_event, event.key, event.channel, dict(event.details)) == (
        UNMAPPED,
        "message.reaction",
        "m1",
        "whatsapp",
        {},
    )
    assert event.raw == body.decode()
    assert fits_schema(event)


def test_email_failed_is_not_documented_so_unmapped() -> None:
    assert normalise(envelope("email.failed", {"id": "eml_1"})).event_type == UNMAPPED


# --- event ids: deterministic, shared by retries, distinct for distinct events --------------------


def test_once_per_message_events_ignore_the_envelope_time() -> None:
    """A retry that restamps the envelope keeps its id, so consumers can deduplicate it."""
    first = normalise(envelope("email.delivered", {"id": "eml_1"}, timestamp="2026-03-09T14:30:00Z"))
    retry = normalise(envelope("email.delivered", {"id": "eml_1"}, timestamp="2026-03-09T15:30:00Z"))
    assert first.event_id == retry.event_id == "email.delivered:eml_1"


@pytest.mark.parametrize(
    ("event", "first", "second"),
    [
        ("email.opened", {"opened_at": "2026-03-09T14:41:17Z"}, {"opened_at": "2026-03-09T18:02:00Z"}),
        # A soft bounce, then the hard one: a consumer deduplicating on event_id must keep both.
        (
            "email.bounced",
            {"bounce_type": "soft", "bounced_at": "2026-03-09T14:30:10Z"},
            {"bounce_type": "hard", "bounced_at": "2026-03-10T14:30:10Z"},
        ),
        (
            "email.clicked",
            {"url": "https://a.example", "clicked_at": "2026-03-09T14:41:52Z"},
            {"url": "https://b.example", "clicked_at": "2026-03-09T14:41:52Z"},
        ),
    ],
)
def test_repeatable_events_of_one_message_get_distinct_ids(event: str, first: Any, second: Any) -> None:
    ids = {normalise(envelope(event, {"id": "eml_1"} | data)).event_id for data in (first, second)}
    assert len(ids) == 2


def test_repeatable_event_id_prefers_its_own_time_to_the_envelope() -> None:
    data = {"id": "eml_1", "opened_at": "2026-03-09T14:41:17Z"}
    first = normalise(envelope("email.opened", data, timestamp="2026-03-09T14:41:18Z"))
    retry = normalise(envelope("email.opened", data, timestamp="2026-03-09T15:41:18Z"))
    assert first.event_id == retry.event_id == "email.opened:eml_1:2026-03-09T14:41:17Z"


def test_sessions_disconnecting_twice_get_distinct_ids() -> None:
    ids = {
        normalise(envelope("session.disconnected", {"session_id": "s1"}, timestamp=stamp)).event_id
        for stamp in ("2026-03-09T18:05:00Z", "2026-03-10T09:00:00Z")
    }
    assert len(ids) == 2


def test_without_any_id_the_event_id_is_the_body_hash() -> None:
    body = envelope("account.updated", {"plan": "pro"})
    first, second = normalise(body), normalise(body)
    assert first.event_id == second.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert first.key == first.event_id


@pytest.mark.parametrize(
    ("event", "data", "key"),
    [
        ("verify.completed", {"verification_id": "v1", "id": "x"}, "v1"),  # a verification is no message
        ("session.disconnected", {"session_id": "s1"}, "s1"),
        ("message.read", {"message_id": "m1", "session_id": "s1"}, "m1"),
        ("sms.sent", {"id": 42}, "42"),
    ],
)
def test_key(event: str, data: dict[str, Any], key: str) -> None:
    assert normalise(envelope(event, data)).key == key


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "data", "occurred_at"),
    [
        ({}, {"delivered_at": "2026-03-09T14:29:00Z"}, datetime(2026, 3, 9, 14, 30, tzinfo=UTC)),
        ({"timestamp": "2026-03-09T15:30:00+01:00"}, {}, datetime(2026, 3, 9, 14, 30, tzinfo=UTC)),
        ({"timestamp": None}, {"delivered_at": "2026-03-09T14:29:00Z"}, datetime(2026, 3, 9, 14, 29, tzinfo=UTC)),
    ],
)
def test_occurred_at_envelope_first_then_the_events_own_time(
    fields: dict[str, Any], data: dict[str, Any], occurred_at: datetime
) -> None:
    assert normalise(envelope("email.delivered", {"id": "e"} | data, **fields)).occurred_at == occurred_at


# --- PayloadInvalid ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"event":"sms.sent"}]', id="array"),
        pytest.param(envelope().decode().encode("utf-16"), id="utf-16"),
        pytest.param(envelope(event=""), id="empty-event"),
        pytest.param(envelope(event=42), id="numeric-event"),
        pytest.param(json.dumps({"timestamp": "2026-03-09T14:30:00Z", "data": {}}).encode(), id="no-event"),
        pytest.param(json.dumps({"event": "sms.sent", "timestamp": "2026-03-09T14:30:00Z"}).encode(), id="no-data"),
        pytest.param(envelope(data=[]), id="data-array"),
        pytest.param(envelope(data="x"), id="data-string"),
        pytest.param(envelope(timestamp=None), id="no-time-at-all"),
        pytest.param(envelope(timestamp="2026-03-09T14:30:00"), id="naive-timestamp"),
        pytest.param(envelope(timestamp="yesterday"), id="bad-timestamp"),
        pytest.param(envelope(timestamp=1773066600), id="unix-number"),
        pytest.param(envelope(data={"sent_at": "2026-03-09T14:30:00"}, timestamp=None), id="naive-data-time"),
        pytest.param(envelope(data={"sent_at": 1773066600}, timestamp=None), id="numeric-data-time"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise(body)


def test_metadata_stringified_if_sent() -> None:
    event = normalise(envelope("sms.sent", {"id": "s", "metadata": {"order": 7, "vip": True, "ref": "A1"}}))
    assert dict(event.metadata) == {"order": "7", "vip": "true", "ref": "A1"}


# --- 3. example() for `bridge send-test` ---------------------------------------------------------

# SendAPI's own names, and the canonical types whose SendAPI event is named differently.
PRODUCED = [
    *sorted(DOCUMENTED_EVENTS),
    *("message.hard_bounced", "message.soft_bounced", "message.spam_complaint", "message.opened"),
    *("message.clicked", "message.inbound", "verification.completed", "verification.expired"),
]


@pytest.mark.parametrize("event_type", PRODUCED)
def test_example_signs_verifies_normalises_and_fits(event_type: str) -> None:
    body, headers = SENDER.sign(SENDER.example(event_type, NOW_DT), source(), NOW_DT.timestamp())
    verify(raw(*headers.items()), body)
    event = normalise(body)
    assert event.event_type != UNMAPPED
    assert event_type in (event.event_type, event.provider_event)
    assert event.occurred_at == NOW_DT
    assert fits_schema(event)


@pytest.mark.parametrize(
    ("event_type", "provider_event", "channel"),
    [
        ("message.delivered", "message.delivered", "whatsapp"),  # send-test's default
        ("message.hard_bounced", "email.bounced", "email"),
        ("message.soft_bounced", "email.bounced", "email"),
        ("verification.completed", "verify.completed", "sms"),
        ("message.inbound", "message.received", "whatsapp"),
    ],
)
def test_example_for_a_canonical_type(event_type: str, provider_event: str, channel: str) -> None:
    event = normalise(SENDER.example(event_type, NOW_DT))
    assert (event.event_type, event.provider_event, event.channel) == (event_type, provider_event, channel)


def test_example_of_an_event_sendapi_does_not_send_is_unmapped() -> None:
    event = normalise(SENDER.example("webhook.test", NOW_DT))
    assert (event.event_type, event.provider_event) == (UNMAPPED, "webhook.test")
    assert fits_schema(event)


@pytest.mark.parametrize("event_type", ["message.delivered", "email.opened", "session.disconnected"])
def test_examples_are_fresh_deliveries(event_type: str) -> None:
    first, second = (normalise(SENDER.example(event_type, NOW_DT)) for _ in range(2))
    assert first.event_id != second.event_id


@pytest.mark.parametrize(
    ("pairs", "body", "reason"),
    [
        pytest.param([], BODY, "missing_header", id="no-signature-header"),
        pytest.param(sha256() + sha256(), BODY, "malformed_header", id="duplicate-header"),
        pytest.param(signed(DIGEST), BODY, "malformed_header", id="no-sha256-prefix"),
        pytest.param(sha256(OTHER), BODY, "no_matching_signature", id="wrong-secret"),
        pytest.param(sha256(), BODY + b"\n", "no_matching_signature", id="tampered-body"),
    ],
)
def test_reasons(pairs: Pairs, body: bytes, reason: str) -> None:
    """SendAPI signs no timestamp: there is no stale case."""
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body)
    assert caught.value.reason == reason
