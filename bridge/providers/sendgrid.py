"""SendGrid Event Webhook: ECDSA P-256 over `timestamp + body`, a JSON array of events (docs/providers.md, SendGrid)."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, PrivateAttr, model_validator

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import DIGITS, check_age, single_header
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    derived_id,
    flag_field,
    no_details,
    parse_json,
    smtp_fields,
    string_field,
    stringify_map,
    text_field,
    unix_time_or_ms,
)
from bridge.settings import ConfigModel, SourceSettings

NAME = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
PEM_ARMOUR = re.compile(r"-----(?:BEGIN|END) ([A-Z0-9 ]+)-----")
PUBLIC_KEY_LABELS = frozenset({"PUBLIC KEY"})
PRIVATE_KEY_LABELS = frozenset({"PRIVATE KEY", "EC PRIVATE KEY"})
# An SMTP reply as SendGrid quotes it in `response`/`reason`: "550 5.1.1 No such user", "250 OK".
SMTP_REPLY = re.compile(r"\s*([2-5][0-9]{2})(?:[ -]+([2-5]\.[0-9]{1,3}\.[0-9]{1,3}))?(?![0-9.])")
MAX_INT = 2**31 - 1  # Avro int
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
NO_SIGNING_KEY = (
    "signing needs a P-256 private key (base64 DER PKCS#8) as the source's first secret; SendGrid keeps its "
    "own, so use a test key pair whose public half is in options.public_keys"
)

Event = dict[str, Any]


class SendGridOptions(ConfigModel):
    # The Signed Event Webhook's verification keys (base64 DER SubjectPublicKeyInfo, as the
    # console and `GET /v3/user/webhooks/event/settings/signed` show them; PEM also accepted).
    # Several during a rotation: a delivery verified by any of them is accepted.
    public_keys: list[str] = Field(
        min_length=1, description="The Signed Event Webhook's public keys (base64 DER or PEM), several during rotation."
    )


class SendGridSource(SourceSettings):
    """`options.public_keys` verify. `secrets` do not (SendGrid signs with a private key it keeps): a
    source may carry one for `bridge send-test` only, a P-256 private key, base64 DER PKCS#8 (or PEM),
    whose public half is in `options.public_keys`."""

    provider: Literal["sendgrid"]
    options: SendGridOptions
    # Loaded once here, so no request pays for parsing a key.
    _verification_keys: tuple[ec.EllipticCurvePublicKey, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_keys(self) -> SendGridSource:
        self._verification_keys = tuple(
            _public_key(text, f"options.public_keys.{index}") for index, text in enumerate(self.options.public_keys)
        )
        for index, secret in enumerate(self.secret_values()):
            _private_key(secret, f"secrets.{index}")
        return self

    @property
    def verification_keys(self) -> tuple[ec.EllipticCurvePublicKey, ...]:
        """`options.public_keys`, loaded."""
        return self._verification_keys


class SendGrid:
    def verify(self, headers: Headers, body: bytes, source: SendGridSource, now: float) -> None:
        signature = _signature(single_header(headers, SIGNATURE_HEADER))
        timestamp = single_header(headers, TIMESTAMP_HEADER)
        if not DIGITS.fullmatch(timestamp):
            raise SignatureInvalid("the signed timestamp is not a number of seconds", "malformed_header")
        signed = timestamp.encode() + body  # no separator; the body's trailing CRLF is signed too
        if not any(_signed_by(key, signature, signed) for key in source.verification_keys):
            raise SignatureInvalid("the signature matches no configured public key", "no_matching_signature")
        check_age(timestamp, now, source)

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        return [_canonical_event(event, delivery) for event in _parse_batch(delivery.body)]


def signature_headers(body: bytes, private_key: str, now: float) -> dict[str, str]:
    """The headers SendGrid sends with `body`, signed at `now` with `private_key` (base64 DER PKCS#8 or PEM)."""
    timestamp = str(int(now))
    signature = _private_key(private_key, "secret").sign(timestamp.encode() + body, ECDSA_SHA256)
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


class SendGridSender:
    """`bridge send-test`: examples of the canonical types SendGrid sends, signed with the source's first
    secret, a test private key (SendGrid keeps its own)."""

    def example(self, event_type: str, now: datetime) -> bytes:
        fields = _EXAMPLES.get(event_type)
        if fields is None:
            raise ValueError(f"SendGrid sends no event that maps to {event_type}; it can send {', '.join(_EXAMPLES)}")
        message = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        event = {
            "email": "user@example.com",
            "timestamp": int(now.timestamp()),
            "smtp-id": f"<{message}@ismtpd-send-test>",
            "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode(),
            "sg_message_id": f"{message}.recvd-send-test-1-{int(now.timestamp()):X}-0.0",
            "category": ["send-test"],
            "sent_by": "bridge send-test",  # a custom arg, as v3 Mail Send's custom_args arrive
            **fields,
        }
        # SendGrid's bodies end in CRLF (the SDK's test vector); so do ours.
        return json.dumps([event], ensure_ascii=False, separators=(",", ":")).encode() + b"\r\n"

    def sign(self, body: bytes, source: SendGridSource, now: float) -> tuple[bytes, dict[str, str]]:
        if not source.secrets:
            raise ValueError(NO_SIGNING_KEY)
        return body, signature_headers(body, source.secret_values()[0], now)


# --- verification ---------------------------------------------------------------------------------


def _signature(header: str) -> bytes:
    try:
        return base64.b64decode(header, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise SignatureInvalid("the signature header is not base64", "malformed_header") from None


def _signed_by(key: ec.EllipticCurvePublicKey, signature: bytes, signed: bytes) -> bool:
    # ECDSA verification has no secret to leak by timing, so no compare_digest here.
    try:
        key.verify(signature, signed, ECDSA_SHA256)
    except InvalidSignature:  # also what a malformed DER signature raises
        return False
    return True


def _der(text: str, labels: frozenset[str], where: str) -> bytes:
    """Base64 DER, with or without PEM armour: a pasted PEM works even with its newlines lost."""
    found = set(PEM_ARMOUR.findall(text))
    if found - labels:
        raise ValueError(f"{where}: a PEM block of {', '.join(sorted(found))}, expected {' or '.join(sorted(labels))}")
    try:
        return base64.b64decode("".join(PEM_ARMOUR.sub("", text).split()), validate=True)
    except ValueError:
        raise ValueError(f"{where}: not base64") from None


def _public_key(text: str, where: str) -> ec.EllipticCurvePublicKey:
    der = _der(text, PUBLIC_KEY_LABELS, where)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"{where}: base64, but not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{where}: not a P-256 (secp256r1) key, which is what SendGrid signs with")
    return key


def _private_key(text: str, where: str) -> ec.EllipticCurvePrivateKey:
    der = _der(text, PRIVATE_KEY_LABELS, where)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # TypeError: an encrypted key
        raise ValueError(f"{where}: base64, but not an unencrypted DER PKCS#8 private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{where}: not a P-256 (secp256r1) private key")
    return key


# --- payload --------------------------------------------------------------------------------------


def _canonical_event(event: Event, delivery: Delivery) -> CanonicalEvent:
    name = event["event"]
    event_type = _event_type(event)
    raw = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    message_id = _message_id(event)
    recipient = string_field(event, "email")
    # surrogatepass: a JSON "\ud800" escape must not crash here; the Avro encoder dead-letters it.
    event_id = string_field(event, "sg_event_id") or derived_id(raw.encode("utf-8", "surrogatepass"))
    return CanonicalEvent.of(
        delivery,
        event_id=event_id,
        event_type=event_type,
        provider_event=name,
        key=message_id or recipient or event_id,
        occurred_at=_occurred_at(event.get("timestamp")),
        raw=raw,
        message_id=message_id,
        recipient=recipient,
        attempt=_count(event.get("attempt")),
        tags=_tags(event.get("category")),
        metadata=_metadata(event),
        details=DETAILS.get(event_type, no_details)(event),
    )


def _parse_batch(body: bytes) -> list[Event]:
    """The body as a JSON array of events, each an object with an `event` name and a `timestamp`.

    One bad element dead-letters the whole delivery: the dead-letter topic keeps bodies whole, so
    the batch can be replayed after a fix, and publishing the rest would split it.
    """
    value = parse_json(body, parse_constant=_no_constant)
    if not isinstance(value, list):
        raise PayloadInvalid(f"body is JSON {type(value).__name__}, expected an array of events")
    for index, event in enumerate(value):
        if not isinstance(event, dict):
            raise PayloadInvalid(f"{index}: event is JSON {type(event).__name__}, expected an object")
        if not isinstance(event.get("event"), str) or not event["event"]:
            raise PayloadInvalid(f"{index}.event: missing or not a string")
        _occurred_at(event.get("timestamp"), f"{index}.timestamp")
    return value


def _no_constant(name: str) -> None:
    # json.loads takes NaN and Infinity, which json.dumps would write back into `raw` as non-JSON.
    raise PayloadInvalid(f"body is not JSON: {name} is not a JSON number")


def _occurred_at(value: object, field: str = "timestamp") -> datetime:
    """Unix time, a number or a string of digits (the docs show both); milliseconds where huge."""
    if isinstance(value, str) and DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PayloadInvalid(f"{field}: expected unix time in seconds, got {value!r}")
    # An integer beyond a float's range is passed undivided (dividing it would raise): unix_time refuses it.
    return unix_time_or_ms(value, field)


def _message_id(event: Event) -> str | None:
    """The X-Message-Id that Mail Send returned: `sg_message_id` up to its first ".".

    sg_message_id is "<X-Message-Id>.<filter/recvd host and time>"; the prefix is what a sender
    stored at send time, and it is the same for every event of the message.
    """
    value = event.get("sg_message_id")
    if not isinstance(value, str):
        return None
    return value.strip().split(".", 1)[0] or None


def _count(value: object) -> int | None:
    """A positive Avro int, from a number or a string of digits (`attempt` arrives as "5")."""
    if isinstance(value, str) and DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT:
        return value
    return None


def _tags(category: object) -> tuple[str, ...]:
    """`category` arrives as sent: one string, or an array of them."""
    items = category if isinstance(category, list) else [category]
    return tuple(item for item in items if isinstance(item, str) and item)


# Fields SendGrid itself sets (Event Webhook reference, django-anymail's list, Marketing Campaigns
# and Single Send fields). Everything else in an event is a custom (unique) argument.
SENDGRID_FIELDS = frozenset(
    {
        "asm_group_id", "attempt", "bounce_classification", "category", "cert_err", "domain", "email",
        "event", "from", "ip", "marketing_campaign_id", "marketing_campaign_name",
        "marketing_campaign_split_id", "marketing_campaign_version", "mc_stats", "newsletter",
        "nlvx_campaign_id", "nlvx_campaign_split_id", "nlvx_user_id", "phase_id", "pool", "post_type",
        "reason", "response", "send_at", "sg_content_type", "sg_event_id", "sg_machine_open",
        "sg_message_id", "sg_template_id", "sg_template_name", "sg_user_id", "singlesend_id",
        "singlesend_name", "smtp-id", "status", "template_hash", "template_id", "template_version_id",
        "timestamp", "tls", "type", "url", "url_offset", "useragent",
    }
)  # fmt: skip
NESTED_ARGUMENTS = ("unique_args", "custom_args")


def _metadata(event: Event) -> dict[str, str]:
    """Custom arguments, stringified. SendGrid merges them into the event; the reference's
    property table also names `unique_args`/`custom_args` objects, so those are read too."""
    merged: dict[str, Any] = {}
    for name in NESTED_ARGUMENTS:
        nested = event.get(name)
        merged |= nested if isinstance(nested, dict) else {}
    skip = SENDGRID_FIELDS | set(NESTED_ARGUMENTS)
    merged |= {key: value for key, value in event.items() if key not in skip}
    return stringify_map(merged)


# --- mapping (docs/events.md, SendGrid column) ------------------------------------------------------

EVENT_TYPES = {
    "processed": "message.created",
    "delivered": "message.delivered",
    "deferred": "message.deferred",
    "dropped": "message.failed",
    "spamreport": "message.spam_complaint",
    "open": "message.opened",
    "click": "message.clicked",
    "unsubscribe": "message.unsubscribed",
    "group_unsubscribe": "message.unsubscribed",
}
# `bounce` carries `type`: "bounce" is permanent, "blocked" temporary (the reference calls it a
# soft bounce). Payloads older than `type` are hard bounces (the reference's description then).
BOUNCE_TYPES = {"bounce": "message.hard_bounced", "blocked": "message.soft_bounced", None: "message.hard_bounced"}


def _event_type(event: Event) -> str:
    if event["event"] == "bounce":
        kind = event.get("type")
        # A `type` that is not a string (a list, an object) is no type SendGrid sends, nor a key to look up.
        return BOUNCE_TYPES.get(kind, UNMAPPED) if kind is None or isinstance(kind, str) else UNMAPPED
    return EVENT_TYPES.get(event["event"], UNMAPPED)


def _delivered(event: Event) -> Details:
    return {"reason": None, **smtp_fields(text_field(event, "response"), SMTP_REPLY), "session_id": None}


def _deferred(event: Event) -> Details:
    # The examples put the server's reply in `response`; the property table says `reason`.
    reply = text_field(event, "response") or text_field(event, "reason")
    return {"reason": text_field(event, "reason") or reply, **smtp_fields(reply, SMTP_REPLY), "bounce_class": None}


def _bounced(event: Event) -> Details:
    reply = text_field(event, "reason")  # "Error response that the receiving server returned"
    return {
        "reason": reply,
        **smtp_fields(reply, SMTP_REPLY, text_field(event, "status")),
        "bounce_class": text_field(event, "bounce_classification"),
    }


def _dropped(event: Event) -> Details:
    # SendGrid's own decision ("Bounced Address"); no receiving server was involved.
    return {"reason": text_field(event, "reason"), **smtp_fields(None, SMTP_REPLY), "error_code": None}


def _created(event: Event) -> Details:
    # `processed` names neither subject nor recipients list; only the deferred example has `from`.
    return {
        "subject": None,
        "from_address": text_field(event, "from"),
        "from_name": None,
        "to": [],
        "cc": [],
        "bcc": [],
        "reply_to": None,
    }


def _engaged(event: Event) -> Details:
    return {
        "subject": None,
        "first": None,
        "user_agent": text_field(event, "useragent"),
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": text_field(event, "ip"),
    }


def _opened(event: Event) -> Details:
    # sg_machine_open: Apple Mail Privacy Protection fetched the pixel, not a person.
    return {**_engaged(event), "is_bot": flag_field(event, "sg_machine_open")}


def _clicked(event: Event) -> Details:
    offset = event.get("url_offset")  # {"index": 0, "type": "html"} in the examples; an int per the table
    index = offset.get("index") if isinstance(offset, dict) else offset
    link_index = index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index <= MAX_INT else None
    return {**_engaged(event), "url": text_field(event, "url"), "link_index": link_index}


DETAILS: dict[str, Callable[[Event], Details]] = {
    "message.created": _created,
    "message.delivered": _delivered,
    "message.deferred": _deferred,
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.failed": _dropped,
    "message.spam_complaint": lambda event: {"feedback_type": None},
    "message.opened": _opened,
    "message.clicked": _clicked,
}

_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
# What example() sends for each canonical type: the SendGrid event and its own fields.
_EXAMPLES: dict[str, dict[str, Any]] = {
    "message.created": {"event": "processed"},
    "message.delivered": {"event": "delivered", "response": "250 2.0.0 OK", "ip": "192.0.2.10", "tls": 1},
    "message.deferred": {"event": "deferred", "response": "451 4.3.0 Try again later", "attempt": "2"},
    "message.hard_bounced": {
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "status": "5.1.1",
        "bounce_classification": "Invalid Address",
    },
    "message.soft_bounced": {
        "event": "bounce",
        "type": "blocked",
        "reason": "421 4.7.0 Try again later, closing connection",
        "status": "4.7.0",
        "bounce_classification": "Reputation",
    },
    "message.failed": {"event": "dropped", "reason": "Bounced Address", "status": "5.0.0"},
    "message.spam_complaint": {"event": "spamreport"},
    "message.opened": {"event": "open", "useragent": _UA, "ip": "198.51.100.7", "sg_machine_open": False},
    "message.clicked": {
        "event": "click",
        "useragent": _UA,
        "ip": "198.51.100.7",
        "url": "https://example.com/welcome",
        "url_offset": {"index": 0, "type": "html"},
    },
    "message.unsubscribed": {"event": "unsubscribe"},
    UNMAPPED: {"event": "group_resubscribe", "asm_group_id": 10, "useragent": _UA, "ip": "198.51.100.7"},
}


SPEC = ProviderSpec(name=NAME, source=SendGridSource, build=lambda io: SendGrid(), sender=SendGridSender)
