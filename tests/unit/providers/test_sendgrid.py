"""SendGrid provider: ECDSA verification, agreement with the official SDK, payload mapping
(docs/providers.md#sendgrid-sendgrid)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sendgrid.helpers.eventwebhook import EventWebhook

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers import sendgrid as module
from bridge.providers.base import ProviderIO
from bridge.providers.sendgrid import SendGrid, SendGridSender, SendGridSource, signature_headers
from tests.support import providers as helpers
from tests.support.providers import TOLERANCES, Pairs, file_name, fits_schema, fixture_files, is_fresh, raw

SENDGRID = SendGrid()
SENDER = SendGridSender()
FIXTURES = helpers.FIXTURES / "sendgrid"
FIXTURE_FILES = fixture_files("sendgrid")
RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)

# The published vector (docs/providers.md#sendgrid-sendgrid; sendgrid-python test/unit/test_eventwebhook.py).
VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+"
    "2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
VECTOR_TIMESTAMP = 1600112502
VECTOR_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]\r\n'
)
# The SDK test's "bad key": a valid P-256 key that did not sign the vector.
SDK_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+"
    "y7GjUuFDb/R1NGe1OPzpA=="
)
SDK_OTHER_SIGNATURE = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0="

T = 1700000000
BODY = b'[{"email":"a@example.com","event":"delivered","sg_event_id":"e1","timestamp":1699999990}]\r\n'


# --- keys and helpers ----------------------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def public_b64(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def pem(b64: str, label: str = "PUBLIC KEY") -> str:
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


KEY, OLD_KEY, STRANGER = new_key(), new_key(), new_key()


def ecdsa(key: ec.EllipticCurvePrivateKey, signed: bytes) -> str:
    """Computed here, independently of the provider module."""
    return base64.b64encode(key.sign(signed, ec.ECDSA(hashes.SHA256()))).decode()


def signed(signature: str, timestamp: str | int = T) -> Pairs:
    return raw(
        ("X-Twilio-Email-Event-Webhook-Signature", signature),
        ("X-Twilio-Email-Event-Webhook-Timestamp", str(timestamp)),
    )


def by(key: ec.EllipticCurvePrivateKey = KEY, t: int | str = T, body: bytes = BODY) -> Pairs:
    return signed(ecdsa(key, str(t).encode() + body), t)


def source(*keys: str, secrets: tuple[str, ...] = (), tolerance: int = 300) -> SendGridSource:
    return SendGridSource.model_validate(
        {
            "name": "sg",
            "provider": "sendgrid",
            "secrets": list(secrets),
            "tolerance_seconds": tolerance,
            "options": {"public_keys": list(keys or [public_b64(KEY)])},
        }
    )


VECTOR_SOURCE = source(VECTOR_KEY)


def verify(pairs: Pairs, body: bytes = BODY, now: float = T, src: SendGridSource | None = None) -> None:
    SENDGRID.verify(Headers(raw=pairs), body, src or source(), now)


def normalise(body: bytes) -> list[CanonicalEvent]:
    return SENDGRID.normalise(Delivery("sg-prod", "sendgrid", Headers(raw=[]), body, RECEIVED))


def one(**fields: Any) -> CanonicalEvent:
    event = {"event": "delivered", "timestamp": 1513299569, "email": "a@example.com"} | fields
    [result] = normalise(json.dumps([{key: value for key, value in event.items() if value is not None}]).encode())
    return result


def config_error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        config.parse_source({"name": "sg", "provider": "sendgrid"} | fields)
    return str(caught.value)


# --- 1. verifier ---------------------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    assert PROVIDERS["sendgrid"].source is SendGridSource
    assert isinstance(PROVIDERS["sendgrid"].build(ProviderIO.default()), SendGrid)


def test_spec_vector_is_the_sdk_test_body() -> None:
    assert (FIXTURES / "sdk_vector_dropped.json").read_bytes() == VECTOR_BODY
    assert VECTOR_BODY.endswith(b"}]\r\n")


def test_spec_vector_verifies() -> None:
    verify(signed(VECTOR_SIGNATURE, VECTOR_TIMESTAMP), VECTOR_BODY, VECTOR_TIMESTAMP, VECTOR_SOURCE)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(VECTOR_BODY.rstrip(), id="crlf-trimmed"),
        pytest.param(VECTOR_BODY[:-2] + b"\n", id="lf-only"),
        pytest.param(VECTOR_BODY.replace(b"Bounced", b"Blocked"), id="tampered"),
    ],
)
def test_spec_vector_needs_the_exact_bytes(body: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify(signed(VECTOR_SIGNATURE, VECTOR_TIMESTAMP), body, VECTOR_TIMESTAMP, VECTOR_SOURCE)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(pem(VECTOR_KEY), id="pem"),
        pytest.param(pem(VECTOR_KEY).replace("\n", " "), id="pem-newlines-lost"),
        pytest.param(f"  {VECTOR_KEY[:40]}\n{VECTOR_KEY[40:]}  ", id="wrapped-base64"),
    ],
)
def test_pasted_key_forms_verify_the_vector(key: str) -> None:
    verify(signed(VECTOR_SIGNATURE, VECTOR_TIMESTAMP), VECTOR_BODY, VECTOR_TIMESTAMP, source(key))


def test_valid() -> None:
    verify(by())


GOOD = ecdsa(KEY, f"{T}".encode() + BODY)


@pytest.mark.parametrize(
    ("pairs", "body"),
    [
        pytest.param(by(), BODY.replace(b"a@", b"b@"), id="tampered-body"),
        pytest.param(by(), BODY[:-1], id="tampered-last-byte"),
        pytest.param(by(STRANGER), BODY, id="wrong-key"),
        pytest.param(signed(GOOD, T + 1), BODY, id="timestamp-changed"),
        pytest.param(signed(ecdsa(KEY, f"{T}.".encode() + BODY)), BODY, id="dot-separator-signed"),
        pytest.param(signed(ecdsa(KEY, BODY)), BODY, id="body-only-signed"),
        pytest.param(raw(("X-Twilio-Email-Event-Webhook-Timestamp", str(T))), BODY, id="no-signature-header"),
        pytest.param(raw(("X-Twilio-Email-Event-Webhook-Signature", GOOD)), BODY, id="no-timestamp-header"),
        pytest.param(by()[:1] + by(), BODY, id="duplicate-signature-header"),
        pytest.param(by() + by()[1:], BODY, id="duplicate-timestamp-header"),
        pytest.param(signed(""), BODY, id="empty-signature"),
        pytest.param(signed(GOOD[:-4]), BODY, id="truncated-signature"),
        pytest.param(signed(GOOD.rstrip("=") + "A="), BODY, id="not-base64"),
        pytest.param(signed(GOOD + "!"), BODY, id="junk-after-base64"),
        pytest.param(signed(base64.b64encode(base64.b64decode(GOOD) + b"\0").decode()), BODY, id="trailing-der-bytes"),
        pytest.param(signed(ecdsa(KEY, b"1.7e9" + BODY), "1.7e9"), BODY, id="non-numeric-timestamp"),
        pytest.param(signed(ecdsa(KEY, f"-{T}".encode() + BODY), f"-{T}"), BODY, id="negative-timestamp"),
        pytest.param(signed(ecdsa(KEY, b"" + BODY), ""), BODY, id="empty-timestamp"),
    ],
)
def test_rejects(pairs: Pairs, body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body)
    assert type(caught.value) is SignatureInvalid  # not reported as a clock problem


def test_non_ascii_signature_is_signature_invalid() -> None:
    pairs = [(module.SIGNATURE_HEADER.encode(), b"\xe9" + GOOD.encode()), (module.TIMESTAMP_HEADER.encode(), b"%d" % T)]
    with pytest.raises(SignatureInvalid):
        verify(pairs)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_within_tolerance(skew: int) -> None:
    verify(by(), now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_outside_tolerance_is_stale(skew: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(by(), now=T + skew)


def test_stale_only_reported_for_authentic_deliveries() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(by(STRANGER), now=T + 3600)
    assert type(caught.value) is SignatureInvalid


@pytest.mark.parametrize(("tolerance", "skew", "ok"), TOLERANCES)
def test_tolerance_per_source(tolerance: int, skew: int, ok: bool) -> None:
    assert is_fresh(lambda: verify(by(), now=T + skew, src=source(tolerance=tolerance))) is ok


ROTATING = source(public_b64(OLD_KEY), public_b64(KEY))


@pytest.mark.parametrize("key", [OLD_KEY, KEY], ids=["old", "new"])
def test_rotation_either_key(key: ec.EllipticCurvePrivateKey) -> None:
    verify(by(key), src=ROTATING)


def test_rotation_third_key_rejected() -> None:
    with pytest.raises(SignatureInvalid):
        verify(by(STRANGER), src=ROTATING)


@pytest.mark.parametrize("keys", [(SDK_OTHER_KEY, VECTOR_KEY), (VECTOR_KEY, SDK_OTHER_KEY)], ids=["second", "first"])
def test_rotation_vector_verifies_in_either_position(keys: tuple[str, str]) -> None:
    verify(signed(VECTOR_SIGNATURE, VECTOR_TIMESTAMP), VECTOR_BODY, VECTOR_TIMESTAMP, source(*keys))


def test_keys_are_parsed_once_at_check(monkeypatch: pytest.MonkeyPatch) -> None:
    src = source(public_b64(KEY))
    assert all(isinstance(key, ec.EllipticCurvePublicKey) for key in src.verification_keys)
    assert [public_b64(key) for key in src.verification_keys] == [public_b64(KEY)]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a key was parsed per request")

    monkeypatch.setattr(module.serialization, "load_der_public_key", refuse)
    verify(by(), src=src)


# --- the source model: configuration errors name the key --------------------------------------------

NOT_SPKI = "base64, but not a DER SubjectPublicKeyInfo"
P384 = public_b64(ec.generate_private_key(ec.SECP384R1()))
ED25519 = base64.b64encode(
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        pytest.param([VECTOR_KEY, "not a key"], "options.public_keys.1: not base64", id="not-base64"),
        pytest.param([base64.b64encode(b"junk").decode()], f"options.public_keys.0: {NOT_SPKI}", id="not-der"),
        pytest.param([VECTOR_KEY, P384], "options.public_keys.1: not a P-256", id="p384"),
        pytest.param([ED25519], "options.public_keys.0: not a P-256", id="ed25519"),
        pytest.param(
            [pem(private_b64(KEY), "PRIVATE KEY")],
            "options.public_keys.0: a PEM block of PRIVATE KEY, expected PUBLIC KEY",
            id="pem-private",
        ),
        pytest.param([private_b64(KEY)], f"options.public_keys.0: {NOT_SPKI}", id="der-private"),
        pytest.param([], "options.public_keys: List should have at least 1 item", id="empty"),
    ],
)  # fmt: skip
def test_invalid_public_key_is_a_config_error_naming_it(keys: list[str], named: str) -> None:
    assert named in config_error(options={"public_keys": keys})


def test_missing_options_named() -> None:
    # `options` is required as a whole: SendGrid cannot be verified without its public keys.
    assert "options: Field required" in config_error()
    assert "options.public_keys: Field required" in config_error(options={})


def test_unknown_option_named() -> None:
    assert "options.public_key: unknown key" in config_error(options={"public_keys": [VECTOR_KEY], "public_key": "x"})


@pytest.mark.parametrize(
    ("secret", "named"),
    [
        pytest.param("nope!", "secrets.0: not base64", id="not-base64"),
        pytest.param(VECTOR_KEY, "secrets.0: base64, but not an unencrypted DER PKCS#8 private key", id="public-key"),
        pytest.param(pem(VECTOR_KEY), "secrets.0: a PEM block of PUBLIC KEY", id="pem-public-key"),
        pytest.param(private_b64(ec.generate_private_key(ec.SECP384R1())), "secrets.0: not a P-256", id="p384-private"),
    ],
)
def test_invalid_signing_secret_is_a_config_error_naming_it(secret: str, named: str) -> None:
    assert named in config_error(options={"public_keys": [VECTOR_KEY]}, secrets=[secret])


@pytest.mark.parametrize("secret", [private_b64(KEY), pem(private_b64(KEY), "PRIVATE KEY")], ids=["der", "pem"])
def test_signing_secret_forms_accepted(secret: str) -> None:
    assert [public_b64(key) for key in source(secrets=(secret,)).verification_keys] == [public_b64(KEY)]


def test_no_secret_needed() -> None:
    assert source().secrets == []


# --- 2. differential check against the official SDK (sendgrid 6.12.5 EventWebhook) ------------------


def sdk_accepts(key: str, body: bytes, signature: str, timestamp: str) -> bool:
    webhook = EventWebhook()
    return bool(webhook.verify_signature(body.decode(), signature, timestamp, webhook.convert_public_key_to_ecdsa(key)))


def ours_accepts(key: str, body: bytes, signature: str, timestamp: str) -> bool:
    try:
        verify(signed(signature, timestamp), body, now=int(timestamp), src=source(key))
    except SignatureInvalid:
        return False
    return True


OURS_T = str(T)
OURS_SIG = ecdsa(KEY, OURS_T.encode() + BODY)
VT = str(VECTOR_TIMESTAMP)


@pytest.mark.parametrize(
    ("key", "body", "signature", "timestamp", "accepted"),
    [
        pytest.param(VECTOR_KEY, VECTOR_BODY, VECTOR_SIGNATURE, VT, True, id="vector"),
        pytest.param(SDK_OTHER_KEY, VECTOR_BODY, VECTOR_SIGNATURE, VT, False, id="vector-other-key"),
        pytest.param(VECTOR_KEY, VECTOR_BODY, SDK_OTHER_SIGNATURE, VT, False, id="vector-other-signature"),
        pytest.param(VECTOR_KEY, VECTOR_BODY.rstrip(), VECTOR_SIGNATURE, VT, False, id="vector-crlf-trimmed"),
        pytest.param(VECTOR_KEY, VECTOR_BODY.replace(b"hello@", b"hallo@"), VECTOR_SIGNATURE, VT, False, id="tampered"),
        pytest.param(VECTOR_KEY, VECTOR_BODY, VECTOR_SIGNATURE, str(VECTOR_TIMESTAMP + 1), False, id="other-timestamp"),
        pytest.param(public_b64(KEY), BODY, OURS_SIG, OURS_T, True, id="generated-key"),
        pytest.param(public_b64(STRANGER), BODY, OURS_SIG, OURS_T, False, id="generated-wrong-key"),
        pytest.param(public_b64(KEY), BODY + b" ", OURS_SIG, OURS_T, False, id="generated-tampered"),
        pytest.param(public_b64(KEY), BODY, ecdsa(KEY, BODY), OURS_T, False, id="timestamp-not-signed"),
    ],
)
def test_agrees_with_sdk(key: str, body: bytes, signature: str, timestamp: str, accepted: bool) -> None:
    assert (ours_accepts(key, body, signature, timestamp), sdk_accepts(key, body, signature, timestamp)) == (
        accepted, accepted
    )  # fmt: skip


def test_sdk_takes_a_non_numeric_timestamp_we_refuse() -> None:
    # The SDK verifies over whatever the header says; we need seconds to apply the tolerance.
    signature = ecdsa(KEY, b"1." + BODY)
    assert sdk_accepts(public_b64(KEY), BODY, signature, "1.")
    with pytest.raises(SignatureInvalid, match="not a number of seconds"):
        verify(signed(signature, "1."))


@pytest.mark.parametrize("path", [None, *FIXTURE_FILES], ids=lambda p: p.name if p else "example")
def test_sdk_accepts_our_sign(path: Path | None) -> None:
    body = path.read_bytes() if path else SENDER.example("message.delivered", RECEIVED)
    headers = signature_headers(body, private_b64(KEY), T)
    webhook = EventWebhook(public_b64(KEY))
    assert webhook.verify_signature(
        body.decode(),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )


# --- 3. normaliser: fixtures (the Event Webhook reference's examples) ------------------------------


def test_fixtures_cover_the_sendgrid_vocabulary() -> None:
    names = {event["event"] for path in FIXTURE_FILES for event in json.loads(path.read_bytes())}
    assert names >= {"processed", "dropped", "delivered", "deferred", "bounce", "open", "click", "spamreport"}
    assert names >= {"unsubscribe", "group_unsubscribe", "group_resubscribe", "account_status_change"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fans_out_one_event_per_element(path: Path) -> None:
    elements = json.loads(path.read_bytes())
    events = normalise(path.read_bytes())
    assert len(events) == len(elements)
    for element, event in zip(elements, events, strict=True):
        compact = json.dumps(element, separators=(",", ":"), ensure_ascii=False)
        derived = "sha256:" + hashlib.sha256(compact.encode()).hexdigest()
        assert (event.raw, json.loads(event.raw)) == (compact, element)
        assert (event.provider_event, event.recipient, event.event_id) == (
            element["event"], element.get("email"), element.get("sg_event_id", derived)
        )  # fmt: skip
        assert (event.provider, event.source, event.channel, event.received_at) == (
            "sendgrid",
            "sg-prod",
            "email",
            RECEIVED,
        )
        assert event.key == (event.message_id or event.recipient or event.event_id)
        assert fits_schema(event)


MESSAGE = "14c5d75ce93"  # the reference's sg_message_id "14c5d75ce93.dfd.64b469.filter0001..." up to its first "."
STAMP = datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)
UA_MSIE = "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"

EXPECTED: dict[str, tuple[str, str, datetime, dict[str, Any]]] = {
    "processed.json": ("message.created", MESSAGE, STAMP, {"subject": None, "from_address": None, "to": []}),
    "delivered.json": (
        "message.delivered",
        MESSAGE,
        STAMP,
        {"reason": None, "smtp_status_code": 250, "smtp_enhanced_status_code": None, "smtp_response": "250 OK"},
    ),
    "deferred.json": (
        "message.deferred",
        MESSAGE,  # the reference's example has a leading space in sg_message_id
        STAMP,
        {"reason": "400 try again later", "smtp_status_code": 400, "smtp_response": "400 try again later"},
    ),
    "bounce.json": (
        "message.hard_bounced",
        MESSAGE,
        STAMP,
        {
            "reason": "500 unknown recipient",
            "smtp_status_code": 500,
            "smtp_enhanced_status_code": "5.0.0",
            "smtp_response": "500 unknown recipient",
            "bounce_class": "Invalid Address",
        },
    ),
    "blocked.json": ("message.soft_bounced", MESSAGE, STAMP, {"bounce_class": "Invalid Address"}),
    "blocked_unclassified.json": (
        "message.soft_bounced",
        "euo2iKxdSayPF4YE4--I7A",
        datetime(2025, 2, 23, 8, 45, 20, tzinfo=UTC),
        {"smtp_status_code": None, "smtp_enhanced_status_code": None, "bounce_class": "Unclassified"},
    ),
    "dropped.json": (
        "message.failed",
        MESSAGE,
        STAMP,
        {"reason": "Bounced Address", "smtp_status_code": None, "smtp_response": None, "error_code": None},
    ),
    "sdk_vector_dropped.json": (
        "message.failed",
        "LRzXl_NHStOGhQ4kofSm_A",
        datetime(2020, 9, 14, 19, 41, 32, tzinfo=UTC),
        {"reason": "Bounced Address"},
    ),
    "open.json": (
        "message.opened",
        MESSAGE,
        STAMP,
        {"user_agent": UA_MSIE, "ip": "255.255.255.255", "is_bot": False, "first": None},
    ),
    "single_send_open.json": (
        "message.opened",
        "sendgrid_internal_message_id",
        datetime(2020, 6, 9, 18, 19, 12, 372000, tzinfo=UTC),  # a millisecond timestamp in the reference
        {"ip": "127.0.0.1", "is_bot": None},
    ),
    "click.json": (
        "message.clicked",
        "sendgrid_internal_message_id",
        datetime(2009, 8, 11, 0, 0, tzinfo=UTC),
        {"url": "http://example.com/blog/news.html", "ip": "255.255.255.255", "link_index": 0},
    ),
    "unique_args_click.json": (
        "message.clicked",
        "sendgrid_internal_message_id",
        datetime(2012, 5, 25, 17, 26, 55, tzinfo=UTC),
        {"url": "https://example.com", "link_index": None},
    ),
    "spamreport.json": ("message.spam_complaint", MESSAGE, STAMP, {"feedback_type": None}),
    "unsubscribe.json": ("message.unsubscribed", MESSAGE, STAMP, {}),
    "group_unsubscribe.json": ("message.unsubscribed", MESSAGE, STAMP, {}),
    "group_resubscribe.json": (UNMAPPED, MESSAGE, STAMP, {}),
    "legacy_newsletter_unsubscribe.json": (  # no sg_message_id: keyed by the address
        "message.unsubscribed",
        "nick@sendgrid.com",
        datetime(2013, 10, 3, 17, 47, 17, tzinfo=UTC),
        {},
    ),
    "account_status_change.json": (  # neither message nor address: keyed by sg_event_id
        UNMAPPED,
        "MjEzNTg5OTcyOC10ZXJtaW5hdGUtMTcwNzg1MTUzMQ",
        datetime(2024, 2, 28, 17, 47, 8, tzinfo=UTC),
        {},
    ),
    "campaign_ab_processed.json": (
        "message.created",
        "5lFl7Fr1Rjme_EyzNNB_5A",
        datetime(2015, 9, 15, 20, 44, 8, tzinfo=UTC),
        {},
    ),
}


def test_every_single_event_fixture_has_expectations() -> None:
    assert {path.name for path in FIXTURE_FILES} - set(EXPECTED) == {"all_events.json"}


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_fixture_mapping(name: str, expected: tuple[str, str, datetime, dict[str, Any]]) -> None:
    event_type, key, occurred_at, details = expected
    [event] = normalise((FIXTURES / name).read_bytes())
    assert (event.event_type, event.key, event.occurred_at) == (event_type, key, occurred_at)
    assert {name: event.details[name] for name in details} == details


def test_batch_fans_out_in_order() -> None:
    events = normalise((FIXTURES / "all_events.json").read_bytes())
    assert [event.event_type for event in events] == [
        "message.created", "message.deferred", "message.delivered", "message.opened", "message.clicked",
        "message.hard_bounced", "message.failed", "message.spam_complaint", "message.unsubscribed",
        "message.unsubscribed", UNMAPPED,
    ]  # fmt: skip
    assert {event.key for event in events} == {"sg_message_id"}


@pytest.mark.parametrize(
    ("name", "attempt", "tags", "metadata"),
    [
        ("deferred.json", 5, ("cat facts",), {}),
        ("click.json", None, ("category1", "category2"), {"unique_arg_key": "unique_arg_value"}),
        ("unique_args_click.json", None, (), {"userid": "1123", "template": "welcome"}),
        ("single_send_open.json", None, (), {}),
        ("campaign_ab_processed.json", None, (), {}),
        ("legacy_newsletter_unsubscribe.json", None, ("Tests", "Newsletter"), {}),
    ],
)
def test_fixture_attempt_tags_and_custom_args(
    name: str, attempt: int | None, tags: tuple[str, ...], metadata: dict[str, str]
) -> None:
    [event] = normalise((FIXTURES / name).read_bytes())
    assert (event.attempt, event.tags, dict(event.metadata)) == (attempt, tags, metadata)


# --- 3. normaliser: rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sg_message_id", "message_id"),
    [
        ("LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0", "LRzXl_NHStOGhQ4kofSm_A"),
        ("euo2iKxdSayPF4YE4--I7A.recvd-5f54b5d587-pczjm-1-67BADEEA-6.0", "euo2iKxdSayPF4YE4--I7A"),
        (" 14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", "14c5d75ce93"),
        ("no-suffix", "no-suffix"),
        ("", None),
        (".filter-only", None),
        (42, None),
    ],
)
def test_message_id_is_the_x_message_id_prefix(sg_message_id: object, message_id: str | None) -> None:
    assert one(sg_message_id=sg_message_id).message_id == message_id


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"sg_message_id": "abc.filter", "sg_event_id": "e1"}, "abc"),
        ({"sg_event_id": "e1"}, "a@example.com"),  # an asynchronous bounce has no message id
        ({"sg_event_id": "e1", "email": None}, "e1"),  # account events: neither
    ],
)
def test_key_falls_back_to_address_then_event_id(fields: dict[str, Any], key: str) -> None:
    assert one(**fields).key == key


def test_missing_event_id_is_derived_per_element_deterministically() -> None:
    body = json.dumps([{"event": "open", "timestamp": 1, "email": e} for e in ("a@x", "b@x")]).encode()
    first, second = normalise(body), normalise(body)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert first[0].event_id != first[1].event_id
    assert all(e.event_id.startswith("sha256:") for e in first)


@pytest.mark.parametrize(
    ("bounce_type", "event_type"),
    [
        ("bounce", "message.hard_bounced"),
        ("blocked", "message.soft_bounced"),
        (None, "message.hard_bounced"),
        ("expired", UNMAPPED),
        (7, UNMAPPED),
    ],
)
def test_bounce_type_decides_hard_or_soft(bounce_type: object, event_type: str) -> None:
    assert one(event="bounce", type=bounce_type).event_type == event_type


@pytest.mark.parametrize("name", ["group_resubscribe", "account_status_change", "machine_learning", "Processed"])
def test_events_without_a_canonical_type_are_unmapped(name: str) -> None:
    event = one(event=name, sg_message_id="m1.x", asm_group_id=3)
    assert (event.event_type, event.provider_event, event.key, dict(event.details)) == (UNMAPPED, name, "m1", {})
    assert dict(event.metadata) == {}  # asm_group_id is SendGrid's, it stays in raw
    assert fits_schema(event)


@pytest.mark.parametrize(
    ("value", "occurred_at"),
    [
        (1513299569, datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)),
        ("1513299569", datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC)),
        (1513299569.5, datetime(2017, 12, 15, 0, 59, 29, 500000, tzinfo=UTC)),
        (1513299569123, datetime(2017, 12, 15, 0, 59, 29, 123000, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(value: object, occurred_at: datetime) -> None:
    assert one(timestamp=value).occurred_at == occurred_at


@pytest.mark.parametrize(("value", "attempt"), [("5", 5), (5, 5), ("0", None), (-1, None), ("x", None), (True, None)])
def test_attempt_forms(value: object, attempt: int | None) -> None:
    assert one(event="deferred", attempt=value).attempt == attempt


def test_huge_attempt_is_dropped_and_fits_schema() -> None:
    event = one(event="deferred", attempt=3_000_000_000)
    assert event.attempt is None and fits_schema(event)


@pytest.mark.parametrize(
    ("category", "tags"),
    [("one", ("one",)), (["a", "b"], ("a", "b")), ([], ()), (None, ()), (["a", 1, "", None], ("a",))],
)
def test_category_as_string_or_array(category: object, tags: tuple[str, ...]) -> None:
    assert one(category=category).tags == tags


def test_custom_args_stringified_reserved_fields_excluded() -> None:
    event = one(
        sg_event_id="e1", sg_message_id="m.x", response="250 OK", tls=1, pool={"id": 1}, order_id=42,
        vip=True, cart={"items": [1, 2]}, custom_args={"tenant": "t1"}, unique_args={"legacy": 7},
    )  # fmt: skip
    assert dict(event.metadata) == {
        "tenant": "t1", "legacy": "7", "order_id": "42", "vip": "true", "cart": '{"items":[1,2]}'
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "code", "enhanced"),
    [
        ("250 OK", 250, None),
        ("250 2.0.0 OK 1700000000 example123-abc456def789ghi012jkl345.123 - gsmtp", 250, "2.0.0"),
        ("550 5.1.1 The email account that you tried to reach does not exist", 550, "5.1.1"),
        ("421-4.7.0 Try again later", 421, "4.7.0"),
        ("unable to get mx info", None, None),
        ("2500 not a reply", None, None),
        ("250.1 not a reply", None, None),
    ],
)
def test_smtp_reply_parsed_from_response(reply: str, code: int | None, enhanced: str | None) -> None:
    details = one(response=reply).details
    assert (details["smtp_status_code"], details["smtp_enhanced_status_code"], details["smtp_response"]) == (
        code, enhanced, reply
    )  # fmt: skip


def test_bounce_status_wins_over_the_reply_text() -> None:
    details = one(event="bounce", type="bounce", reason="550 5.1.1 No such user", status="5.1.10").details
    assert (details["smtp_status_code"], details["smtp_enhanced_status_code"]) == (550, "5.1.10")


def test_deferred_reason_only_as_the_property_table_has_it() -> None:
    details = one(event="deferred", reason="421 4.7.0 Try later").details
    assert (details["reason"], details["smtp_status_code"], details["smtp_response"]) == (
        "421 4.7.0 Try later", 421, "421 4.7.0 Try later"
    )  # fmt: skip


@pytest.mark.parametrize(("offset", "index"), [(3, 3), ({"index": 2, "type": "html"}, 2), ("1", None), (-1, None)])
def test_url_offset_as_object_or_integer(offset: object, index: int | None) -> None:
    assert one(event="click", url="https://x", url_offset=offset).details["link_index"] == index


@pytest.mark.parametrize(("machine", "is_bot"), [(True, True), (False, False), ("true", None)])
def test_machine_open_is_a_bot(machine: object, is_bot: bool | None) -> None:
    assert one(event="open", sg_machine_open=machine).details["is_bot"] is is_bot


def test_empty_batch_publishes_nothing() -> None:
    assert normalise(b"[]\r\n") == []


def test_raw_keeps_unicode_unescaped() -> None:
    [event] = normalise('[{"event":"open","timestamp":1,"useragent":"Grüße 🌍"}]\r\n'.encode())
    assert event.raw == '{"event":"open","timestamp":1,"useragent":"Grüße 🌍"}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"event":"open","timestamp":1}', id="object-not-array"),
        pytest.param(b'"open"', id="string"),
        pytest.param(b'[{"event":"open","timestamp":1},"open"]', id="non-object-element"),
        pytest.param(b'[{"event":"open","timestamp":1},[]]', id="array-element"),
        pytest.param(b'[{"event":"open","timestamp":1},{"timestamp":1}]', id="element-without-event"),
        pytest.param(b'[{"event":"","timestamp":1}]', id="empty-event"),
        pytest.param(b'[{"event":7,"timestamp":1}]', id="numeric-event"),
        pytest.param(b'[{"event":"open"}]', id="no-timestamp"),
        pytest.param(b'[{"event":"open","timestamp":"yesterday"}]', id="text-timestamp"),
        pytest.param(b'[{"event":"open","timestamp":-1}]', id="negative-timestamp"),
        pytest.param(b'[{"event":"open","timestamp":true}]', id="boolean-timestamp"),
        pytest.param(b'[{"event":"open","timestamp":1e300}]', id="timestamp-out-of-range"),
        pytest.param(b'[{"event":"open","timestamp":100000000000000000000000}]', id="huge-integer-timestamp"),
        pytest.param(b'[{"event":"open","timestamp":1' + b"0" * 400 + b"}]", id="integer-beyond-a-float"),
        pytest.param(b'[{"event":"open","timestamp":NaN}]', id="nan"),
        pytest.param(b'[{"event":"open","timestamp":1,"x":Infinity}]', id="infinity"),
        pytest.param('[{"event":"open","timestamp":1}]'.encode("utf-16"), id="utf-16"),
        pytest.param(b'[{"event":"open","timestamp":1}', id="cut-short"),
    ],
)
def test_payload_invalid_dead_letters_the_whole_delivery(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise(body)


def test_a_lone_surrogate_does_not_crash_normalise() -> None:
    # Valid JSON, not encodable text: the Avro encoder turns it into a dead letter later.
    [event] = normalise(b'[{"event":"open","timestamp":1,"useragent":"\\ud800"}]')
    assert event.event_id.startswith("sha256:") and event.details["user_agent"] == "\ud800"


def test_payload_invalid_names_the_element() -> None:
    with pytest.raises(PayloadInvalid, match=r"^1\.event: "):
        normalise(b'[{"event":"open","timestamp":1},{"timestamp":1}]')


# --- 4. sign() and example() -------------------------------------------------------------------------

SENDABLE = [
    "message.created", "message.delivered", "message.deferred", "message.hard_bounced", "message.soft_bounced",
    "message.failed", "message.spam_complaint", "message.opened", "message.clicked", "message.unsubscribed", UNMAPPED,
]  # fmt: skip
NOW_DT = datetime(2025, 8, 8, 20, 15, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())


def test_sign_headers() -> None:
    headers = signature_headers(BODY, private_b64(KEY), T + 0.9)
    assert set(headers) == {
        "X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp", "Content-Type"
    }  # fmt: skip
    assert headers["X-Twilio-Email-Event-Webhook-Timestamp"] == str(T)
    signature = base64.b64decode(headers["X-Twilio-Email-Event-Webhook-Signature"], validate=True)
    KEY.public_key().verify(signature, str(T).encode() + BODY, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("secret", [private_b64(KEY), pem(private_b64(KEY), "PRIVATE KEY")], ids=["der", "pem"])
def test_sign_then_verify(secret: str) -> None:
    verify(raw(*signature_headers(BODY, secret, T).items()))


def test_sign_with_a_public_key_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match="secret: base64, but not an unencrypted DER PKCS#8 private key"):
        signature_headers(BODY, VECTOR_KEY, T)


def test_sign_without_a_secret_says_what_it_needs() -> None:
    # A source without secrets is the usual case for SendGrid: it verifies, but send-test cannot sign.
    with pytest.raises(ValueError, match="signing needs a P-256 private key"):
        SENDER.sign(BODY, source(), T)


def test_sender_signs_with_the_first_secret_and_leaves_the_body() -> None:
    src = source(public_b64(KEY), secrets=(private_b64(KEY), private_b64(STRANGER)))
    body, headers = SENDER.sign(BODY, src, T)
    assert body == BODY
    verify(raw(*headers.items()), src=source(public_b64(KEY)))


@pytest.mark.parametrize("event_type", SENDABLE)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    src = source(public_b64(KEY), secrets=(private_b64(KEY),))
    body = SENDER.example(event_type, NOW_DT)
    assert body.endswith(b"}]\r\n")
    body, headers = SENDER.sign(body, src, NOW)  # what `bridge send-test` does
    verify(raw(*headers.items()), body, now=NOW, src=src)
    [event] = normalise(body)
    assert (event.event_type, event.occurred_at, event.recipient) == (event_type, NOW_DT, "user@example.com")
    assert event.key == event.message_id == json.loads(body)[0]["sg_message_id"].split(".")[0]
    assert (event.tags, dict(event.metadata)) == (("send-test",), {"sent_by": "bridge send-test"})
    assert fits_schema(event)


@pytest.mark.parametrize("event_type", ["message.sent", "webhook.test", "suppression.added", "message.inbound"])
def test_example_of_a_type_sendgrid_never_sends_says_so(event_type: str) -> None:
    with pytest.raises(ValueError, match=f"SendGrid sends no event that maps to {event_type}"):
        SENDER.example(event_type, NOW_DT)


def test_examples_are_fresh_deliveries() -> None:
    first, second = (normalise(SENDER.example("message.delivered", NOW_DT))[0] for _ in range(2))
    assert first.event_id != second.event_id
    assert first.message_id != second.message_id


def test_example_details() -> None:
    [bounce] = normalise(SENDER.example("message.hard_bounced", NOW_DT))
    [deferred] = normalise(SENDER.example("message.deferred", NOW_DT))
    assert dict(bounce.details) == {
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "smtp_status_code": 550,
        "smtp_enhanced_status_code": "5.1.1",
        "smtp_response": "550 5.1.1 The email account that you tried to reach does not exist",
        "bounce_class": "Invalid Address",
    }
    assert deferred.attempt == 2


@pytest.mark.parametrize(
    ("pairs", "body", "now", "reason"),
    [
        pytest.param(raw(("X-Twilio-Email-Event-Webhook-Timestamp", str(T))), BODY, T, "missing_header", id="no-sig"),
        pytest.param(by()[:1] + by(), BODY, T, "malformed_header", id="duplicate-signature-header"),
        pytest.param(signed(GOOD + "!"), BODY, T, "malformed_header", id="not-base64"),
        pytest.param(signed(ecdsa(KEY, b"1.7e9" + BODY), "1.7e9"), BODY, T, "malformed_header", id="non-numeric-t"),
        pytest.param(by(STRANGER), BODY, T, "no_matching_signature", id="wrong-key"),
        pytest.param(by(), BODY[:-1], T, "no_matching_signature", id="tampered-body"),
        pytest.param(by(), BODY, T + 301, "stale_timestamp", id="stale"),
    ],
)
def test_reasons(pairs: Pairs, body: bytes, now: float, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body, now)
    assert caught.value.reason == reason
