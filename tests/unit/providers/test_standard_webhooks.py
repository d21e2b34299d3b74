"""Standard Webhooks / Svix / Resend: signature verification, agreement with the reference libraries
(standardwebhooks 1.1.0, svix 2.9.1), payload mapping (docs/providers.md, Standard Webhooks; docs/events.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks
import svix.webhooks
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook as ReferenceWebhook
from standardwebhooks.webhooks import WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import EVENT_TYPES, UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers.base import ProviderIO
from bridge.providers.standard_webhooks import (
    StandardWebhooks,
    StandardWebhooksSender,
    StandardWebhooksSource,
    signature_headers,
    signing_key,
)
from tests.support import providers as helpers
from tests.support.providers import TOLERANCES, Pairs, file_name, fits_schema, fixture_files, is_fresh, raw

PROVIDER = StandardWebhooks()
SENDER = StandardWebhooksSender()
FIXTURES = helpers.FIXTURES / "standard-webhooks"
FIXTURE_FILES = fixture_files("standard-webhooks")

# The published Svix vector (docs/providers.md#standard-webhooks-svix-resend-clerk-standard-webhooks).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
T = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OTHER = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)
NOW_DT = datetime(2025, 8, 8, 20, 15, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())


# --- helpers -------------------------------------------------------------------------------------


def reference_sign(secret: str, msg_id: str = MSG_ID, t: int = T, body: bytes = BODY) -> str:
    """`v1,<base64>` from the reference library, not from the module under test."""
    return ReferenceWebhook(secret).sign(msg_id, datetime.fromtimestamp(t, UTC), body.decode())


def signed(signature: str, msg_id: str = MSG_ID, t: int | str = T, prefix: str = "svix") -> Pairs:
    return raw((f"{prefix}-id", msg_id), (f"{prefix}-timestamp", str(t)), (f"{prefix}-signature", signature))


def v1(secret: str = SECRET, t: int = T, body: bytes = BODY, prefix: str = "svix", msg_id: str = MSG_ID) -> Pairs:
    return signed(reference_sign(secret, msg_id, t, body), msg_id, t, prefix)


def source(*secrets: str, tolerance: int = 300) -> StandardWebhooksSource:
    return StandardWebhooksSource.model_validate(
        {
            "name": "resend",
            "provider": "standard-webhooks",
            "secrets": list(secrets or [SECRET]),
            "tolerance_seconds": tolerance,
        }
    )


def verify(pairs: Pairs, body: bytes = BODY, now: float = T, src: StandardWebhooksSource | None = None) -> None:
    PROVIDER.verify(Headers(raw=pairs), body, src or source(), now)


def ours_accepts(pairs: Pairs, body: bytes, now: float = NOW) -> bool:
    try:
        verify(pairs, body, now)
    except SignatureInvalid:
        return False
    return True


def as_dict(pairs: Pairs) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in pairs}


def reference_accepts(pairs: Pairs, body: bytes) -> bool:
    try:
        ReferenceWebhook(SECRET).verify(body, as_dict(pairs), json_parse=False)
    except (WebhookVerificationError, ValueError):  # ValueError: it crashes on an entry without a comma
        return False
    return True


def svix_accepts(pairs: Pairs, body: bytes) -> bool:
    try:
        SvixWebhook(SECRET).verify(body, as_dict(pairs))
    except (WebhookVerificationError, ValueError):
        return False
    return True


def normalise_all(body: bytes, pairs: Pairs | None = None) -> list[CanonicalEvent]:
    headers = Headers(raw=raw(("svix-id", MSG_ID)) if pairs is None else pairs)
    return PROVIDER.normalise(Delivery("resend-prod", "standard-webhooks", headers, body, RECEIVED))


def normalise(body: bytes, pairs: Pairs | None = None) -> CanonicalEvent:
    [event] = normalise_all(body, pairs)
    return event


def envelope(**fields: Any) -> bytes:
    payload = {"type": "email.sent", "created_at": "2025-08-08T20:15:00Z", "data": {"email_id": "e1"}} | fields
    return json.dumps({key: value for key, value in payload.items() if value is not None}).encode()


def fixture(name: str) -> CanonicalEvent:
    return normalise((FIXTURES / name).read_bytes())


class PinnedDatetime(datetime):
    """The reference library reads datetime.now(); pinned to NOW through the module it imported."""

    @classmethod
    def now(cls, tz: Any = None) -> PinnedDatetime:  # type: ignore[override]
        return cls.fromtimestamp(NOW, tz)


@pytest.fixture
def reference_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", PinnedDatetime)


# --- 1. the published vector ---------------------------------------------------------------------


def test_vector_is_what_the_reference_library_and_hmac_give() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{T}.".encode() + BODY, hashlib.sha256).digest()
    assert reference_sign(SECRET) == "v1," + base64.b64encode(digest).decode() == SIGNATURE


@pytest.mark.parametrize("prefix", ["svix", "webhook"])
def test_vector_verifies_under_either_header_set(prefix: str) -> None:
    verify(signed(SIGNATURE, prefix=prefix))


def test_signing_key_is_the_base64_decoded_secret() -> None:
    assert signing_key(SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signing_key(SECRET.removeprefix("whsec_")) == signing_key(SECRET)


def test_registered_under_its_name() -> None:
    assert PROVIDERS["standard-webhooks"].source is StandardWebhooksSource
    assert isinstance(PROVIDERS["standard-webhooks"].build(ProviderIO.default()), StandardWebhooks)


# --- 2. verifier ---------------------------------------------------------------------------------

GOOD = reference_sign(SECRET)
WRONG = reference_sign(OTHER)
GOOD_B64 = GOOD.removeprefix("v1,")


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(signed(f"{WRONG} {GOOD}"), id="second-signature-matches"),
        pytest.param(signed(f"{GOOD} {WRONG}"), id="first-signature-matches"),
        pytest.param(signed(f"v1a,{'A' * 86}== {GOOD}"), id="v1a-skipped"),
        pytest.param(signed(f"v2,{GOOD_B64} {GOOD}"), id="unknown-version-skipped"),
        pytest.param(signed(f"nocomma v1,!!! v1,{GOOD_B64[:-4]} {GOOD}"), id="malformed-entries-skipped"),
        pytest.param(signed(f"  {WRONG}   {GOOD}  "), id="extra-spaces"),
        pytest.param(signed(GOOD, t=f" {T} "), id="timestamp-spaces"),
        pytest.param(signed(GOOD, prefix="webhook"), id="webhook-headers"),
        pytest.param(signed(GOOD) + signed(GOOD, prefix="webhook"), id="both-sets"),
        pytest.param(signed(GOOD) + signed(WRONG, "msg_other", T + 1, prefix="webhook"), id="svix-set-wins"),
        pytest.param(
            raw(("svix-id", MSG_ID), ("webhook-timestamp", str(T)), ("svix-signature", GOOD)), id="mixed-names"
        ),
    ],
)
def test_accepts(pairs: Pairs) -> None:
    verify(pairs)


def lettermint_style(secret: str) -> str:
    """The HMAC keyed with the literal secret string: what Standard Webhooks does not do."""
    digest = hmac.new(secret.encode(), f"{MSG_ID}.{T}.".encode() + BODY, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def over(msg_id: str, t: str) -> Pairs:
    """Correctly signed over exactly these header values, so only the header rule can reject it."""
    digest = hmac.new(signing_key(SECRET), f"{msg_id}.{t}.".encode() + BODY, hashlib.sha256).digest()
    return signed("v1," + base64.b64encode(digest).decode(), msg_id, t)


@pytest.mark.parametrize(
    ("pairs", "body"),
    [
        pytest.param(v1(), BODY.replace(b"2432", b"2433"), id="tampered-body"),
        pytest.param(v1(), BODY + b" ", id="trailing-byte"),
        pytest.param(v1(OTHER), BODY, id="wrong-secret"),
        pytest.param(signed(lettermint_style(SECRET)), BODY, id="key-not-base64-decoded"),
        pytest.param(signed(GOOD, msg_id="msg_other"), BODY, id="id-is-signed"),
        pytest.param(signed(GOOD, t=T + 1), BODY, id="timestamp-is-signed"),
        pytest.param(v1()[1:], BODY, id="no-id"),
        pytest.param(v1()[:1] + v1()[2:], BODY, id="no-timestamp"),
        pytest.param(v1()[:2], BODY, id="no-signature"),
        pytest.param(v1(prefix="webhook")[1:], BODY, id="no-webhook-id"),
        pytest.param(v1(prefix="webhook")[:2], BODY, id="no-webhook-signature"),
        pytest.param([], BODY, id="no-headers"),
        pytest.param(over("", str(T)), BODY, id="empty-id"),
        pytest.param(v1()[:1] + v1(), BODY, id="duplicate-id"),
        pytest.param(v1() + v1()[2:], BODY, id="duplicate-signature"),
        pytest.param(over(MSG_ID, f"{T}.0"), BODY, id="fractional-timestamp"),
        pytest.param(over(MSG_ID, f"-{T}"), BODY, id="negative-timestamp"),
        pytest.param(over(MSG_ID, "1.6e9"), BODY, id="exponent-timestamp"),
        pytest.param(over(MSG_ID, ""), BODY, id="empty-timestamp"),
        pytest.param(signed(""), BODY, id="empty-signature"),
        pytest.param(signed(GOOD_B64), BODY, id="no-version"),
        pytest.param(signed(f"v1a,{GOOD_B64}"), BODY, id="hmac-labelled-v1a"),
        pytest.param(signed(f"V1,{GOOD_B64}"), BODY, id="version-is-case-sensitive"),
        pytest.param(signed(f"v1,{GOOD_B64.rstrip('=')}"), BODY, id="unpadded-signature"),
        pytest.param(signed(f"v1,{GOOD_B64[:-2]}"), BODY, id="truncated-signature"),
        # The reference library drops characters outside the alphabet and would accept this one.
        pytest.param(signed(f"v1,{GOOD_B64[:8]}!{GOOD_B64[8:]}"), BODY, id="junk-inside-signature"),
        pytest.param(signed(f"v1,{GOOD_B64.replace('+', '-').replace('/', '_')}"), BODY, id="urlsafe-alphabet"),
        pytest.param(signed(WRONG) + signed(GOOD, prefix="webhook"), BODY, id="svix-set-wins-when-wrong"),
    ],
)
def test_rejects(pairs: Pairs, body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body)
    assert type(caught.value) is SignatureInvalid  # not reported as a clock problem


def test_non_ascii_signature_is_signature_invalid() -> None:
    pairs = [(b"svix-id", MSG_ID.encode()), (b"svix-timestamp", str(T).encode()), (b"svix-signature", b"v1,\xe9")]
    with pytest.raises(SignatureInvalid):
        verify(pairs)


def test_non_ascii_id_is_signed_as_its_wire_bytes() -> None:
    msg_id = "msg_\u00e9"  # one latin-1 byte on the wire, 0xE9
    digest = hmac.new(signing_key(SECRET), b"msg_\xe9." + f"{T}.".encode() + BODY, hashlib.sha256).digest()
    verify(signed("v1," + base64.b64encode(digest).decode(), msg_id=msg_id))


@pytest.mark.parametrize("skew", [-300, -0.5, 0, 299.9, 300])
def test_within_tolerance(skew: float) -> None:
    verify(v1(), now=T + skew)


@pytest.mark.parametrize("skew", [-300.5, -301, 300.5, 301, -86_400])
def test_outside_tolerance_is_stale(skew: float) -> None:
    with pytest.raises(StaleTimestamp):
        verify(v1(), now=T + skew)


def test_stale_only_reported_for_authentic_deliveries() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(v1(OTHER), now=T + 3600)
    assert type(caught.value) is SignatureInvalid


@pytest.mark.parametrize(("tolerance", "skew", "ok"), TOLERANCES)
def test_tolerance_per_source(tolerance: int, skew: int, ok: bool) -> None:
    assert is_fresh(lambda: verify(v1(), now=T + skew, src=source(tolerance=tolerance))) is ok


ROTATING = source(OTHER, SECRET)


@pytest.mark.parametrize("secret", [OTHER, SECRET])
def test_rotation_either_configured_secret(secret: str) -> None:
    verify(v1(secret), src=ROTATING)


def test_rotation_sender_signing_with_old_and_new_secret() -> None:
    verify(signed(f"{WRONG} {GOOD}"), src=source(SECRET))
    verify(signed(f"{WRONG} {GOOD}"), src=source(OTHER))


def test_rotation_third_secret_rejected() -> None:
    third = "whsec_" + base64.b64encode(b"a-third-secret-24-bytes!").decode()
    with pytest.raises(SignatureInvalid):
        verify(v1(third), src=ROTATING)


# --- check(): secrets are validated at start-up ---------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        pytest.param([SECRET, "whsec_not base64!"], "secrets.1: not a Standard Webhooks secret", id="not-base64"),
        pytest.param(["whsec_" + "a" * 30 + "-_"], "secrets.0: not a Standard Webhooks secret", id="urlsafe"),
        pytest.param(["whsec_"], "secrets.0: not a Standard Webhooks secret", id="empty-key"),
        pytest.param([], "secrets: this provider needs at least one secret", id="no-secrets"),
    ],
)
def test_check_rejects_bad_secrets(secrets: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        StandardWebhooksSource.model_validate({"name": "rs", "provider": "standard-webhooks", "secrets": secrets})
    assert "not base64!" not in str(caught.value).split("input_value")[0]  # the secret is not echoed


def test_check_rejects_options() -> None:
    with pytest.raises(ConfigError, match=re.escape("options.prefix: unknown key")):
        config.parse_source(
            {"name": "rs", "provider": "standard-webhooks", "secrets": [SECRET], "options": {"prefix": "svix"}}
        )


@pytest.mark.parametrize(
    "secret",
    [SECRET, SECRET.removeprefix("whsec_"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_QUJD"],
    ids=["prefixed", "unprefixed", "unpadded", "short"],
)
def test_check_accepts_what_the_reference_library_accepts(secret: str) -> None:
    src = source(secret)
    verify(signed(reference_sign(secret)), src=src)


# --- 3. differential check against the reference libraries ---------------------------------------

NOW_GOOD = reference_sign(SECRET, t=NOW)
NOW_WRONG = reference_sign(OTHER, t=NOW)


def at_now(signature: str = NOW_GOOD, t: int = NOW, prefix: str = "webhook", msg_id: str = MSG_ID) -> Pairs:
    return signed(signature, msg_id, t, prefix)


AGREEMENT = [
    pytest.param(at_now(), BODY, True, id="good"),
    pytest.param(at_now(), BODY + b"\n", False, id="tampered"),
    pytest.param(at_now(NOW_WRONG), BODY, False, id="wrong-secret"),
    pytest.param(at_now(msg_id="msg_other"), BODY, False, id="other-id"),
    pytest.param(at_now(f"{NOW_WRONG} {NOW_GOOD}"), BODY, True, id="rotation"),
    pytest.param(at_now(f"v1a,{NOW_GOOD[3:]} {NOW_WRONG}"), BODY, False, id="hmac-as-v1a"),
    pytest.param(at_now(f"v1a,{'A' * 86}== {NOW_GOOD}"), BODY, True, id="v1a-then-v1"),
    pytest.param(at_now(reference_sign(SECRET, t=NOW - 300), NOW - 300), BODY, True, id="300s-old"),
    pytest.param(at_now(reference_sign(SECRET, t=NOW + 300), NOW + 300), BODY, True, id="300s-ahead"),
    pytest.param(at_now(reference_sign(SECRET, t=NOW - 301), NOW - 301), BODY, False, id="301s-old"),
    pytest.param(at_now(reference_sign(SECRET, t=NOW + 301), NOW + 301), BODY, False, id="301s-ahead"),
    pytest.param(at_now()[1:], BODY, False, id="no-id"),
    pytest.param(at_now("nocomma"), BODY, False, id="malformed-only"),
]


@pytest.mark.usefixtures("reference_clock")
@pytest.mark.parametrize(("pairs", "body", "accepted"), AGREEMENT)
def test_agrees_with_standardwebhooks(pairs: Pairs, body: bytes, accepted: bool) -> None:
    assert (ours_accepts(pairs, body), reference_accepts(pairs, body)) == (accepted, accepted)


def svix_named(pairs: Pairs) -> Pairs:
    return [(name.replace(b"webhook-", b"svix-"), value) for name, value in pairs]


@pytest.mark.usefixtures("reference_clock")
@pytest.mark.parametrize(("pairs", "body", "accepted"), AGREEMENT)
def test_agrees_with_svix(pairs: Pairs, body: bytes, accepted: bool) -> None:
    pairs = svix_named(pairs)
    assert (ours_accepts(pairs, body), svix_accepts(pairs, body)) == (accepted, accepted)


@pytest.mark.usefixtures("reference_clock")
@pytest.mark.parametrize(
    ("pairs", "accepted"),
    [
        pytest.param(at_now(NOW_WRONG, prefix="svix") + at_now(), False, id="svix-wrong-webhook-good"),
        pytest.param(at_now(prefix="svix") + at_now(NOW_WRONG), True, id="svix-good-webhook-wrong"),
    ],
)
def test_header_precedence_is_the_svix_librarys(pairs: Pairs, accepted: bool) -> None:
    assert (ours_accepts(pairs, BODY), svix_accepts(pairs, BODY)) == (accepted, accepted)


def test_svix_library_is_the_reference_library() -> None:
    assert svix.webhooks.StdWh is ReferenceWebhook


# --- 4. sign() -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("reference_clock")
@pytest.mark.parametrize("path", [None, *FIXTURE_FILES], ids=lambda p: p.name if p else "vector-body")
def test_reference_libraries_accept_our_sign(path: Path | None) -> None:
    body = path.read_bytes() if path else BODY
    headers = signature_headers(body, SECRET, NOW + 0.9)
    SvixWebhook(SECRET).verify(body, headers)
    webhook_named = {name.replace("svix-", "webhook-"): value for name, value in headers.items()}
    assert ReferenceWebhook(SECRET).verify(body, webhook_named) == json.loads(body)
    assert headers["svix-signature"] == reference_sign(SECRET, headers["svix-id"], NOW, body)


def test_sign_headers() -> None:
    headers = signature_headers(BODY, SECRET, T + 0.9)
    assert headers == {
        "svix-id": "msg_" + hashlib.sha256(BODY).hexdigest()[:27],
        "svix-timestamp": str(T),
        "svix-signature": reference_sign(SECRET, headers["svix-id"]),
        "Content-Type": "application/json",
    }
    verify(raw(*headers.items()))


def test_sender_signs_with_the_first_secret_and_leaves_the_body() -> None:
    assert SENDER.sign(BODY, source(SECRET, OTHER), T) == (BODY, signature_headers(BODY, SECRET, T))


def test_sign_id_is_stable_for_a_body_and_differs_between_bodies() -> None:
    first, again, other = (signature_headers(body, SECRET, T)["svix-id"] for body in (BODY, BODY, BODY + b" "))
    assert first == again != other


# --- 5. normaliser -------------------------------------------------------------------------------

EMAIL_ID = "56761188-7520-42d8-8898-ff6fc54ce618"
# fixture → (canonical type, key, recipient)
EXPECTED = {
    "email.sent.json": ("message.created", EMAIL_ID, "delivered@resend.dev"),
    "email.scheduled.json": ("message.scheduled", EMAIL_ID, "delivered@resend.dev"),
    "email.delivered.json": ("message.delivered", EMAIL_ID, "delivered@resend.dev"),
    "email.delivery_delayed.json": ("message.deferred", EMAIL_ID, "delivered@resend.dev"),
    "email.bounced.json": ("message.hard_bounced", EMAIL_ID, "delivered@resend.dev"),
    "email.bounced.transient.json": ("message.soft_bounced", EMAIL_ID, "delivered@resend.dev"),
    "email.complained.json": ("message.spam_complaint", EMAIL_ID, "delivered@resend.dev"),
    "email.opened.json": ("message.opened", EMAIL_ID, "delivered@resend.dev"),
    "email.clicked.json": ("message.clicked", EMAIL_ID, "delivered@resend.dev"),
    "email.failed.json": ("message.failed", EMAIL_ID, "delivered@resend.dev"),
    "email.suppressed.json": ("message.suppressed", EMAIL_ID, "delivered@resend.dev"),
    "email.received.json": ("message.inbound", EMAIL_ID, "delivered@resend.dev"),
    "suppression.added.json": ("suppression.added", "susan.kare@example.com", None),
    "suppression.removed.json": ("suppression.removed", "steve.wozniak@example.com", None),
    "contact.created.json": (UNMAPPED, "e169aa45-1ecf-4183-9955-b1499d5701d3", None),
    "domain.created.json": (UNMAPPED, "d91cd9bd-1176-453e-8fc1-35364d380206", None),
    "standard.contact.created.json": (UNMAPPED, "1f81eb52-5198-4599-803e-771906343485", None),
    "clerk.user.created.json": (UNMAPPED, "user_29w83sxmDNGwOuEthce5gg56FcC", None),
}


def test_every_fixture_has_an_expectation_and_every_resend_email_type_a_fixture() -> None:
    assert {path.name for path in FIXTURE_FILES} == set(EXPECTED)
    types = {json.loads(path.read_bytes())["type"] for path in FIXTURE_FILES}
    resend = {"sent", "scheduled", "delivered", "delivery_delayed", "bounced", "complained", "opened", "clicked"}
    resend |= {"failed", "suppressed", "received"}
    assert {f"email.{name}" for name in resend} <= types


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    event_type, key, recipient = EXPECTED[path.name]
    [event] = normalise_all(text.encode())
    assert (event.event_type, event.provider_event, event.key, event.recipient) == (
        event_type, payload["type"], key, recipient
    )  # fmt: skip
    assert event.message_id == payload["data"].get("email_id")
    stamp = payload.get("created_at") or payload["timestamp"]
    want = datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int) else datetime.fromisoformat(stamp)
    assert event.occurred_at == want
    assert (event.event_id, event.raw, event.provider, event.source, event.channel) == (
        MSG_ID, text, "standard-webhooks", "resend-prod", "email"
    )  # fmt: skip
    assert (event.attempt, event.received_at, event.tags) == (None, RECEIVED, ())


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert fits_schema(normalise(path.read_bytes()))


DETAILS = {
    "email.sent.json": {
        "subject": "Sending this example",
        "from_address": "onboarding@resend.dev",
        "from_name": "Acme",
        "to": ["delivered@resend.dev"],
        "cc": [],
        "bcc": [],
        "reply_to": None,
    },
    "email.bounced.json": {
        "reason": "The recipient's email address is on the suppression list because it has a recent history of "
        "producing hard bounces.",
        "bounce_class": "Suppressed",
    },
    "email.bounced.transient.json": {
        "reason": "The recipient's email provider sent a bounce message because the recipient's inbox was full.",
        "bounce_class": "MailboxFull",
    },
    "email.clicked.json": {
        "subject": "Sending this example",
        "url": "https://resend.com",
        "ip": "122.115.53.11",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.1 Safari/605.1.15",
    },
    "email.opened.json": {"subject": "Sending this example"},
    "email.failed.json": {"reason": "reached_daily_quota", "error_code": "reached_daily_quota"},
    "email.suppressed.json": {
        "reason": "Resend has suppressed sending to this address because it is on the account-level suppression "
        "list. This does not count toward your bounce rate metric"
    },
    "email.received.json": {
        "subject": "Sending this example",
        "from_address": "onboarding@resend.dev",
        "to": ["delivered@resend.dev"],
    },
    "suppression.added.json": {"suppression_type": "email", "value": "susan.kare@example.com", "reason": "bounce"},
    "suppression.removed.json": {
        "suppression_type": "email",
        "value": "steve.wozniak@example.com",
        "reason": "manual",
    },
    "email.delivered.json": {},
    "email.delivery_delayed.json": {},
    "email.complained.json": {},
    "email.scheduled.json": {},
    "contact.created.json": {},
    "clerk.user.created.json": {},
}


@pytest.mark.parametrize(("name", "details"), DETAILS.items(), ids=list(DETAILS))
def test_fixture_details(name: str, details: dict[str, Any]) -> None:
    assert dict(fixture(name).details) == details


def test_resend_tags_become_metadata() -> None:
    assert dict(fixture("email.sent.json").metadata) == {"category": "confirm_email"}
    assert dict(fixture("email.received.json").metadata) == {}


@pytest.mark.parametrize(
    ("tags", "metadata"),
    [
        (
            [{"name": "category", "value": "welcome"}, {"name": "n", "value": 2}, "junk"],
            {"category": "welcome", "n": "2"},
        ),
        ({"tier": "gold", "vip": True}, {"tier": "gold", "vip": "true"}),
        ("not-tags", {}),
    ],
)
def test_tag_shapes(tags: object, metadata: dict[str, str]) -> None:
    assert dict(normalise(envelope(data={"email_id": "e1", "tags": tags})).metadata) == metadata


@pytest.mark.parametrize(
    ("bounce", "event_type"),
    [
        ({"type": "Permanent", "subType": "General"}, "message.hard_bounced"),
        ({"type": "Transient", "subType": "General"}, "message.soft_bounced"),
        ({"type": "transient"}, "message.soft_bounced"),
        ({"type": "Undetermined", "subType": "Undetermined"}, "message.hard_bounced"),
        ({}, "message.hard_bounced"),
        (None, "message.hard_bounced"),
        ("Transient", "message.hard_bounced"),
    ],
)
def test_bounce_type_decides_hard_or_soft(bounce: object, event_type: str) -> None:
    data: dict[str, Any] = {"email_id": "e1"} | ({"bounce": bounce} if bounce is not None else {})
    event = normalise(envelope(type="email.bounced", data=data))
    assert event.event_type == event_type
    assert fits_schema(event)


@pytest.mark.parametrize("event", ["email.teleported", "user.created", "domain.deleted", "contact.updated"])
def test_unknown_event_is_unmapped_with_its_own_name(event: str) -> None:
    result = normalise(envelope(type=event, data={"email_id": "e9", "planet": "Mars"}))
    assert (result.event_type, result.provider_event, result.key, dict(result.details)) == (UNMAPPED, event, "e9", {})
    assert fits_schema(result)


def test_squashed_payload_is_its_own_data() -> None:
    body = b'{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10.344522Z","id":"inv_1","to":"a@example.com"}'
    event = normalise(body)
    assert (event.event_type, event.key, event.recipient) == (UNMAPPED, "inv_1", "a@example.com")


def test_key_falls_back_to_the_event_id() -> None:
    event = normalise(envelope(type="user.deleted", data={"deleted": True}))
    assert event.key == event.event_id == MSG_ID


@pytest.mark.parametrize(
    ("pairs", "event_id"),
    [
        (raw(("webhook-id", "msg_std")), "msg_std"),
        (raw(("svix-id", "msg_svix"), ("webhook-id", "msg_std")), "msg_svix"),
    ],
    ids=["webhook-id", "svix-id-wins"],
)
def test_event_id_is_the_verified_id_header(pairs: Pairs, event_id: str) -> None:
    assert normalise(envelope(), pairs).event_id == event_id


def test_without_an_id_header_the_event_id_is_derived_from_the_body() -> None:
    first, second = normalise(envelope(), []), normalise(envelope(), [])
    other = normalise(envelope(data={"email_id": "e2"}), [])
    assert first.event_id == second.event_id != other.event_id
    assert first.event_id.startswith("sha256:")


@pytest.mark.parametrize(
    ("fields", "occurred_at"),
    [
        ({"created_at": "2025-08-08T20:15:00Z", "timestamp": "2020-01-01T00:00:00Z"}, datetime(2025, 8, 8, 20, 15)),
        ({"created_at": None, "timestamp": "2025-08-08T22:14:00+02:00"}, datetime(2025, 8, 8, 20, 14)),
        ({"created_at": None, "timestamp": 1654012591835}, datetime(2022, 5, 31, 15, 56, 31, 835000)),
        ({"created_at": None, "timestamp": 1654012591}, datetime(2022, 5, 31, 15, 56, 31)),
        ({"created_at": None, "timestamp": 1654012591.5}, datetime(2022, 5, 31, 15, 56, 31, 500000)),
    ],
    ids=["created_at-first", "iso-timestamp", "unix-ms", "unix-seconds", "unix-fraction"],
)
def test_occurred_at(fields: dict[str, Any], occurred_at: datetime) -> None:
    assert normalise(envelope(**fields)).occurred_at == occurred_at.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"type":"email.sent"}]', id="array"),
        pytest.param(envelope(type=None), id="no-type"),
        pytest.param(envelope(type=""), id="empty-type"),
        pytest.param(envelope(type=42), id="numeric-type"),
        pytest.param(envelope(data=[]), id="data-array"),
        pytest.param(envelope(data="x"), id="data-string"),
        pytest.param(b'{"type":"email.sent","created_at":"2025-08-08T20:15:00Z","data":null}', id="data-null"),
        pytest.param(envelope(created_at=None), id="no-timestamp"),
        pytest.param(envelope(created_at="2025-08-08T20:15:00"), id="naive-created_at"),
        pytest.param(envelope(created_at="yesterday"), id="bad-created_at"),
        pytest.param(envelope(created_at=1754921294), id="numeric-created_at"),
        pytest.param(envelope(created_at=None, timestamp=True), id="boolean-timestamp"),
        pytest.param(envelope(created_at=None, timestamp=[1]), id="list-timestamp"),
        pytest.param(envelope(created_at=None, timestamp=1e300), id="huge-timestamp"),
        pytest.param(envelope(created_at=None, timestamp=10**400), id="integer-beyond-a-float"),
        pytest.param(envelope(created_at=None, timestamp=-1), id="negative-timestamp"),
        pytest.param(b'{"type":"x","timestamp":NaN,"data":{}}', id="nan-timestamp"),
        pytest.param(envelope().decode().encode("utf-16"), id="utf-16"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(body)


# --- 6. example() --------------------------------------------------------------------------------

SENDABLE = [
    "message.created",
    "message.scheduled",
    "message.delivered",
    "message.deferred",
    "message.hard_bounced",
    "message.soft_bounced",
    "message.spam_complaint",
    "message.opened",
    "message.clicked",
    "message.failed",
    "message.suppressed",
    "message.inbound",
    "suppression.added",
    "suppression.removed",
    UNMAPPED,
]


@pytest.mark.parametrize("event_type", SENDABLE)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    body, headers = SENDER.sign(SENDER.example(event_type, NOW_DT), source(), NOW)
    pairs = raw(*headers.items())
    verify(pairs, body, now=NOW)
    event = normalise(body, pairs)
    assert (event.event_type, event.occurred_at, event.event_id) == (event_type, NOW_DT, headers["svix-id"])
    assert fits_schema(event)


def test_example_delivered_is_resend_shaped() -> None:
    payload = json.loads(SENDER.example("message.delivered", NOW_DT))
    assert (payload["type"], payload["created_at"]) == ("email.delivered", "2025-08-08T20:15:00.000Z")
    assert payload["data"]["to"] == ["user@example.com"]
    assert normalise(json.dumps(payload).encode()).message_id == payload["data"]["email_id"]


@pytest.mark.parametrize("resend_type", ["email.bounced", "email.opened", "contact.created"])
def test_example_takes_resends_own_names(resend_type: str) -> None:
    assert json.loads(SENDER.example(resend_type, NOW_DT))["type"] == resend_type


@pytest.mark.parametrize("event_type", sorted(set(EVENT_TYPES) - set(SENDABLE)))
def test_example_without_a_resend_event_says_so(event_type: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"Resend has no event for '{event_type}'; choose one of: ")):
        SENDER.example(event_type, NOW_DT)


def test_examples_are_fresh_deliveries() -> None:
    first, second = (SENDER.example("message.delivered", NOW_DT) for _ in range(2))
    assert normalise(first).message_id != normalise(second).message_id
    assert signature_headers(first, SECRET, NOW)["svix-id"] != signature_headers(second, SECRET, NOW)["svix-id"]


def test_non_ascii_secret_is_rejected_at_start_up() -> None:
    with pytest.raises(ValidationError, match=re.escape("secrets.0: not a Standard Webhooks secret")):
        source("whsec_\u00e9t\u00e9")


@pytest.mark.parametrize(
    ("pairs", "body", "now", "reason"),
    [
        pytest.param(v1()[:2], BODY, T, "missing_header", id="no-signature"),
        pytest.param([], BODY, T, "missing_header", id="no-headers"),
        pytest.param(over("", str(T)), BODY, T, "malformed_header", id="empty-id"),
        pytest.param(over(MSG_ID, "1.6e9"), BODY, T, "malformed_header", id="exponent-timestamp"),
        pytest.param(signed(GOOD_B64), BODY, T, "malformed_header", id="no-version"),
        pytest.param(v1(OTHER), BODY, T, "no_matching_signature", id="wrong-secret"),
        pytest.param(v1(), BODY + b" ", T, "no_matching_signature", id="tampered-body"),
        pytest.param(v1(), BODY, T + 301, "stale_timestamp", id="stale"),
    ],
)
def test_reasons(pairs: Pairs, body: bytes, now: float, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body, now)
    assert caught.value.reason == reason
