"""Standard Webhooks / Svix (Resend, Clerk, ...): `v1,<base64>` HMAC-SHA256 over `id.timestamp.body`
(docs/providers.md#standard-webhooks-svix-resend-clerk-standard-webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Literal

from pydantic import Field, model_validator

from bridge.errors import PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import DIGITS, matches_any, single_header
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    derived_id,
    no_details,
    object_field,
    parse_json_object,
    parse_timestamp,
    string_field,
    stringify_map,
    unix_time_or_ms,
)
from bridge.settings import NoOptions, SecretSource

NAME = "standard-webhooks"

# Each header is read from its Svix name first, then its Standard Webhooks name: what the svix
# library does, header by header. Resend and Clerk send the svix- set; white-labelled Svix and
# other Standard Webhooks senders the webhook- set.
ID_HEADERS = ("svix-id", "webhook-id")
TIMESTAMP_HEADERS = ("svix-timestamp", "webhook-timestamp")
SIGNATURE_HEADERS = ("svix-signature", "webhook-signature")
SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"


class StandardWebhooksSource(SecretSource):
    """`secrets`: one or more `whsec_<base64>` signing secrets (old and new during rotation)."""

    provider: Literal["standard-webhooks"]
    options: NoOptions = Field(default_factory=NoOptions)

    @model_validator(mode="after")
    def _check(self) -> StandardWebhooksSource:
        for index, secret in enumerate(self.secret_values()):
            try:
                signing_key(secret)
            except ValueError as error:
                raise ValueError(f"secrets.{index}: {error}") from None
        return self


class StandardWebhooks:
    def verify(self, headers: Headers, body: bytes, source: StandardWebhooksSource, now: float) -> None:
        message_id = single_header(headers, *ID_HEADERS)
        if not message_id:
            raise SignatureInvalid("the id header is empty", "malformed_header")
        timestamp = single_header(headers, *TIMESTAMP_HEADERS).strip()
        if not DIGITS.fullmatch(timestamp):
            raise SignatureInvalid("the timestamp header is not a number of seconds", "malformed_header")
        signatures = _parse_signatures(single_header(headers, *SIGNATURE_HEADERS))
        # The header's own bytes (Headers decodes values as latin-1) are what was signed.
        signed = _signed_content(message_id.encode("latin-1"), timestamp, body)
        expected = [_digest(signing_key(secret), signed) for secret in source.secret_values()]
        if not matches_any(expected, signatures):
            raise SignatureInvalid("no v1 signature matches a configured secret", "no_matching_signature")
        age = now - int(timestamp)  # the reference libraries compare to the fractional second
        if abs(age) > source.tolerance_seconds:
            raise StaleTimestamp(f"signed {age:.0f} s ago; tolerance is {source.tolerance_seconds} s")

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        payload = parse_json_object(delivery.body)
        event = payload.get("type")
        if not isinstance(event, str) or not event:
            raise PayloadInvalid("type: missing or not a string")
        data = _data(payload)
        event_type = _canonical(event, data)
        message_id = string_field(data, "email_id")
        event_id = _first(delivery.headers, ID_HEADERS) or derived_id(delivery.body)
        return [
            CanonicalEvent.of(
                delivery,
                event_id=event_id,
                event_type=event_type,
                provider_event=event,
                key=message_id or _subject_id(event_type, data) or event_id,
                occurred_at=_occurred_at(payload),
                message_id=message_id,
                recipient=next(iter(_addresses(data.get("to"))), None),
                metadata=_tags(data.get("tags")),
                details=DETAILS.get(event_type, no_details)(data),
            )
        ]


def signature_headers(body: bytes, secret: str, now: float) -> dict[str, str]:
    """Svix-named headers, as Resend sends them; the id is derived from the body, as a retry keeps it."""
    message_id = "msg_" + hashlib.sha256(body).hexdigest()[:27]
    timestamp = str(int(now))
    digest = _digest(signing_key(secret), _signed_content(message_id.encode(), timestamp, body))
    return {
        "svix-id": message_id,
        "svix-timestamp": timestamp,
        "svix-signature": f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}",
        "Content-Type": "application/json",
    }


class StandardWebhooksSender:
    """`bridge send-test`: Resend-shaped examples, signed with the source's first secret."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """A Resend delivery for a canonical type (or one of Resend's own event names)."""
        resend_type, extra = _EXAMPLES.get(event_type) or (event_type, {})
        if resend_type not in _RESEND_TYPES:
            known = ", ".join(sorted(set(_EXAMPLES) | _RESEND_TYPES))
            raise ValueError(f"Resend has no event for {event_type!r}; choose one of: {known}")
        stamp = now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = _example_data(resend_type, stamp) | extra
        envelope = {"type": resend_type, "created_at": stamp, "data": data}
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()

    def sign(self, body: bytes, source: StandardWebhooksSource, now: float) -> tuple[bytes, dict[str, str]]:
        return body, signature_headers(body, source.secret_values()[0], now)


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64 after `whsec_` (prefix optional, as in the reference library).

    Stricter than the reference library, which drops characters outside the alphabet and so
    would verify with a different key than the operator configured.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise ValueError(f"not a Standard Webhooks secret ({SECRET_PREFIX}<base64>): not base64") from None
    if not key:
        raise ValueError(f"not a Standard Webhooks secret ({SECRET_PREFIX}<base64>): empty")
    return key


def _signed_content(message_id: bytes, timestamp: str, body: bytes) -> bytes:
    return message_id + b"." + timestamp.encode() + b"." + body


def _digest(key: bytes, signed: bytes) -> bytes:
    return hmac.new(key, signed, hashlib.sha256).digest()


def _first(headers: Headers, names: tuple[str, ...]) -> str | None:
    return next((headers[name] for name in names if name in headers), None)


def _parse_signatures(header: str) -> list[bytes]:
    """`v1,<base64> v1,<base64> v1a,...`: other versions and malformed entries are skipped."""
    digests = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except ValueError:  # binascii.Error, or a character outside ASCII
            continue
        digests.append(digest)  # a wrong-length digest simply never matches
    if not digests:
        raise SignatureInvalid("the signature header has no well-formed v1 signature", "malformed_header")
    return digests


# --- Payload mapping -----------------------------------------------------------------------------

# Resend's email.* events by meaning (docs/events.md). email.sent means "accepted by Resend", not "handed
# to the recipient's server": message.created. email.bounced is refined by bounce.type in _canonical.
MAPPED = {
    "email.sent": "message.created",
    "email.scheduled": "message.scheduled",
    "email.delivered": "message.delivered",
    "email.delivery_delayed": "message.deferred",
    "email.bounced": "message.hard_bounced",
    "email.complained": "message.spam_complaint",
    "email.opened": "message.opened",
    "email.clicked": "message.clicked",
    "email.failed": "message.failed",
    "email.suppressed": "message.suppressed",
    "email.received": "message.inbound",
    "suppression.added": "suppression.added",
    "suppression.removed": "suppression.removed",
}
SOFT_BOUNCE_TYPE = "transient"  # Resend's bounce.type: Permanent, Transient, Undetermined


def _canonical(event: str, data: dict[str, Any]) -> str:
    bounce_type = string_field(object_field(data, "bounce"), "type") or ""
    if event == "email.bounced" and bounce_type.lower() == SOFT_BOUNCE_TYPE:
        return "message.soft_bounced"
    return MAPPED.get(event, UNMAPPED)


def _data(payload: dict[str, Any]) -> dict[str, Any]:
    """`data`, or the payload itself: the spec lets senders squash the data into the top level."""
    if "data" not in payload:
        return payload
    data = payload["data"]
    if not isinstance(data, dict):
        raise PayloadInvalid("data: not an object")
    return data


def _occurred_at(payload: dict[str, Any]) -> datetime:
    """Resend's `created_at`, else the spec's `timestamp` (ISO 8601, or unix time as Clerk sends it)."""
    if payload.get("created_at") is not None:
        return parse_timestamp(payload["created_at"], "created_at")
    value = payload.get("timestamp")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return unix_time_or_ms(value, "timestamp")
    if value is None:
        raise PayloadInvalid("created_at / timestamp: missing")
    return parse_timestamp(value, "timestamp")


def _subject_id(event_type: str, data: dict[str, Any]) -> str | None:
    """The record key where there is no email id: the suppressed address, else the object's id."""
    if event_type.startswith("suppression."):
        return string_field(data, "email")
    return string_field(data, "id")


def _tags(value: object) -> dict[str, str]:
    """Resend tags are name → value: a map, or (as the send API takes them) a list of {name, value}."""
    if isinstance(value, list):
        # A tag's name is a string; an entry named by anything else (a list, an object) is no tag.
        value = {item["name"]: item.get("value") for item in value if isinstance(item, dict) and _named(item)}
    return stringify_map(value)


def _named(item: dict[str, Any]) -> bool:
    return isinstance(item.get("name"), str)


def _addresses(value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, str) and item]


def _sender(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """`"Acme <onboarding@resend.dev>"` → (address, display name)."""
    name, address = parseaddr(string_field(data, "from") or "")
    return address or None, name or None


def _created(data: dict[str, Any]) -> Details:
    address, name = _sender(data)
    return {
        "subject": string_field(data, "subject"),
        "from_address": address,
        "from_name": name,
        "to": _addresses(data.get("to")),
        "cc": _addresses(data.get("cc")),
        "bcc": _addresses(data.get("bcc")),
        "reply_to": next(iter(_addresses(data.get("reply_to"))), None),
    }


def _bounced(data: dict[str, Any]) -> Details:
    bounce = object_field(data, "bounce")
    return {"reason": string_field(bounce, "message"), "bounce_class": string_field(bounce, "subType")}


def _clicked(data: dict[str, Any]) -> Details:
    click = object_field(data, "click")
    return {
        "subject": string_field(data, "subject"),
        "url": string_field(click, "link"),
        "ip": string_field(click, "ipAddress"),
        "user_agent": string_field(click, "userAgent"),
    }


def _failed(data: dict[str, Any]) -> Details:
    # Resend's reason is a code (`reached_daily_quota`): it is both the reason and the error code.
    reason = string_field(object_field(data, "failed"), "reason")
    return {"reason": reason, "error_code": reason}


def _inbound(data: dict[str, Any]) -> Details:
    address, _ = _sender(data)
    return {"subject": string_field(data, "subject"), "from_address": address, "to": _addresses(data.get("to"))}


def _suppression(data: dict[str, Any]) -> Details:
    # Resend's suppression list holds email addresses; `origin` is bounce, complaint or manual.
    return {"suppression_type": "email", "value": string_field(data, "email"), "reason": string_field(data, "origin")}


DETAILS: dict[str, Callable[[dict[str, Any]], Details]] = {
    "message.created": _created,
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.opened": lambda data: {"subject": string_field(data, "subject")},
    "message.clicked": _clicked,
    "message.failed": _failed,
    "message.suppressed": lambda data: {"reason": string_field(object_field(data, "suppressed"), "message")},
    "message.inbound": _inbound,
    "suppression.added": _suppression,
    "suppression.removed": _suppression,
}


# --- example(): Resend-shaped deliveries for `bridge send-test` -------------------------------------

_RESEND_TYPES = frozenset(MAPPED) | {"contact.created"}
_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    **{canonical: (resend, {}) for resend, canonical in MAPPED.items()},
    "message.hard_bounced": (
        "email.bounced",
        {
            "bounce": {
                "message": "The recipient's mail server rejected the email.",
                "subType": "General",
                "type": "Permanent",
            }
        },
    ),
    "message.soft_bounced": (
        "email.bounced",
        {"bounce": {"message": "The recipient's inbox is full.", "subType": "MailboxFull", "type": "Transient"}},
    ),
    "message.clicked": (
        "email.clicked",
        {"click": {"ipAddress": "192.0.2.10", "link": "https://example.com/welcome", "userAgent": "bridge send-test"}},
    ),
    "message.failed": ("email.failed", {"failed": {"reason": "reached_daily_quota"}}),
    "message.suppressed": (
        "email.suppressed",
        {"suppressed": {"message": "On the account-level suppression list.", "type": "OnAccountSuppressionList"}},
    ),
    UNMAPPED: ("contact.created", {}),
}


def _example_data(resend_type: str, stamp: str) -> dict[str, Any]:
    if resend_type.startswith("suppression."):
        return {"id": str(uuid.uuid4()), "email": "user@example.com", "origin": "manual", "created_at": stamp}
    if resend_type.startswith("contact."):
        return {"id": str(uuid.uuid4()), "email": "user@example.com", "unsubscribed": False, "created_at": stamp}
    return {
        "created_at": stamp,
        "email_id": str(uuid.uuid4()),
        "from": "Bridge <send-test@example.com>",
        "to": ["user@example.com"],
        "subject": "Hello from bridge send-test",
        "tags": {"sent_by": "bridge send-test"},
    }


SPEC = ProviderSpec(
    name=NAME, source=StandardWebhooksSource, build=lambda io: StandardWebhooks(), sender=StandardWebhooksSender
)
