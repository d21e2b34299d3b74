"""SendAPI (sendapi.co): `sha256=<hex>` HMAC-SHA256 of the raw body; email, SMS and WhatsApp events
(docs/providers.md#sendapi-sendapi)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.events import CHANNELS, UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import HEX_DIGEST, hmac_hex, matches_any, single_header
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    derived_id,
    no_details,
    parse_json_object,
    parse_timestamp,
    smtp_fields,
    stringify_map,
    text_field,
)
from bridge.settings import NoOptions, SecretSource

NAME = "sendapi"
SIGNATURE_HEADER = "x-sendapi-signature"
SIGNATURE_PREFIX = "sha256="
SECRET_PREFIX = "whsec_"
# A hex-decoded key is only tried for a hex secret of at least 128 bits, never for short ones
# (unconfirmed, see docs/providers.md).
HEX_SECRET = re.compile(r"(?:[0-9a-fA-F]{2}){16,}")
TOLERANCE_KEY = "tolerance_seconds"
BOUNCE_EVENT = "email.bounced"
SOFT_BOUNCE_TYPES = frozenset({"soft"})
# "550 5.1.1 User unknown": the SMTP reply code and, if present, the enhanced status code.
SMTP_REPLY = re.compile(r"([245][0-9]{2})(?:[ -]([245]\.[0-9]{1,3}\.[0-9]{1,3}))?\b")
DEFAULT_CHANNEL = "email"

Data = dict[str, Any]


class SendAPISource(SecretSource):
    """`secrets`: one or more `whsec_…` signing secrets (old and new during rotation)."""

    provider: Literal["sendapi"]
    options: NoOptions = Field(default_factory=NoOptions)

    @model_validator(mode="after")
    def _check(self) -> SendAPISource:
        if TOLERANCE_KEY in self.model_fields_set:
            # Refused rather than ignored: an operator who sets it expects a replay window we cannot give.
            raise ValueError(f"{TOLERANCE_KEY}: SendAPI signs no timestamp, so there is no window to apply it to")
        return self


class SendAPI:
    def verify(self, headers: Headers, body: bytes, source: SendAPISource, now: float) -> None:
        signature = _signature(headers)
        expected = [hmac_hex(key, body) for secret in source.secret_values() for key in _keys(secret)]
        if not matches_any(expected, [signature]):
            raise SignatureInvalid("X-SendAPI-Signature matches no configured secret", "no_matching_signature")

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        payload = parse_json_object(delivery.body)
        event, data = _envelope(payload)
        event_type = _event_type(event, data)
        message_id = _message_id(event, data)
        event_id = _event_id(event, payload, data, delivery.body)
        return [
            CanonicalEvent.of(
                delivery,
                event_id=event_id,
                event_type=event_type,
                provider_event=event,
                key=message_id or text_field(data, "verification_id") or text_field(data, "session_id") or event_id,
                occurred_at=_occurred_at(payload, data),
                channel=_channel(event, data),
                message_id=message_id,
                recipient=text_field(data, "to"),
                metadata=stringify_map(data.get("metadata")),
                details=DETAILS.get(event_type, no_details)(data),
            )
        ]


def signature_headers(body: bytes, secret: str) -> dict[str, str]:
    """The headers SendAPI sends with `body`, signed with `secret`: nothing but the body is signed, so no time."""
    return {"X-SendAPI-Signature": SIGNATURE_PREFIX + hmac_hex(secret, body), "Content-Type": "application/json"}


class SendAPISender:
    """`bridge send-test`: an example of a SendAPI event or canonical type, signed with the source's first secret."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """`event_type` is a SendAPI event name (`sms.sent`) or a canonical type (`message.hard_bounced`).

        Any other name is sent as a SendAPI event of that name, which the bridge publishes as unmapped.
        """
        event, overrides = EXAMPLE_FOR.get(event_type, (event_type, {}))
        stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        fields = {**_EXAMPLE_FIELDS.get(event, {}), **overrides}
        data = {**_example_subject(event), **{key: stamp if value is NOW else value for key, value in fields.items()}}
        envelope = {"event": event, "timestamp": stamp, "data": data}
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()

    def sign(self, body: bytes, source: SendAPISource, now: float) -> tuple[bytes, dict[str, str]]:
        return body, signature_headers(body, source.secret_values()[0])


# --- Verification ----------------------------------------------------------------------------------


def _signature(headers: Headers) -> str:
    value = single_header(headers, SIGNATURE_HEADER).strip()
    digest = value.removeprefix(SIGNATURE_PREFIX)
    if digest == value or not HEX_DIGEST.fullmatch(digest):
        raise SignatureInvalid("X-SendAPI-Signature is not sha256=<64 hex digits>", "malformed_header")
    return digest.lower()


def _keys(secret: str) -> list[bytes]:
    """The documented key, the whole `whsec_…` string as UTF-8; and, since the docs do not say
    (unconfirmed, see docs/providers.md), the hex-decoded part after `whsec_` where that is hex
    (the documented secret's shape)."""
    keys = [secret.encode()]
    suffix = secret.removeprefix(SECRET_PREFIX)
    if suffix != secret and HEX_SECRET.fullmatch(suffix):
        keys.append(bytes.fromhex(suffix))
    return keys


# --- Payload mapping (docs/events.md, SendAPI column) ------------------------------------------------

MAPPED = {
    "email.sent": "message.sent",
    "sms.sent": "message.sent",
    "message.sent": "message.sent",
    "email.delivered": "message.delivered",
    "sms.delivered": "message.delivered",
    "message.delivered": "message.delivered",
    "email.complained": "message.spam_complaint",
    "sms.failed": "message.failed",
    "message.failed": "message.failed",
    "email.opened": "message.opened",
    "email.clicked": "message.clicked",
    "message.read": "message.read",
    "message.received": "message.inbound",
    "session.disconnected": "session.disconnected",
    "verify.completed": "verification.completed",
    "verify.expired": "verification.expired",
}
# Events that happen at most once for the thing they are about, so "<event>:<id>" identifies them.
# Opens, clicks, bounces (soft, then hard), disconnections and events we do not know can repeat:
# their id adds the time.
ONCE_PER_SUBJECT = MAPPED.keys() - {"email.opened", "email.clicked", "session.disconnected"}
SUBJECT_FIELDS = ("id", "message_id", "verification_id", "session_id")
# WhatsApp runs over sessions; verification codes go by SMS unless `data.channel` says otherwise.
CHANNEL_BY_PREFIX = {"email": "email", "sms": "sms", "verify": "sms", "message": "whatsapp", "session": "whatsapp"}
CHANNEL_STATED = frozenset({"verify"})


def _envelope(payload: Data) -> tuple[str, Data]:
    event, data = payload.get("event"), payload.get("data")
    if not isinstance(event, str) or not event:
        raise PayloadInvalid("event: missing or not a string")
    if not isinstance(data, dict):
        raise PayloadInvalid("data: missing or not an object")
    return event, data


def _event_type(event: str, data: Data) -> str:
    if event == BOUNCE_EVENT:
        bounce_type = (text_field(data, "bounce_type") or "").lower()
        return "message.soft_bounced" if bounce_type in SOFT_BOUNCE_TYPES else "message.hard_bounced"
    return MAPPED.get(event, UNMAPPED)


def _channel(event: str, data: Data) -> str:
    prefix = event.partition(".")[0]
    stated = (text_field(data, "channel") or "").lower()
    if stated in CHANNELS and (prefix in CHANNEL_STATED or prefix not in CHANNEL_BY_PREFIX):
        return stated
    return CHANNEL_BY_PREFIX.get(prefix, DEFAULT_CHANNEL)


def _message_id(event: str, data: Data) -> str | None:
    # Email and SMS events name their message `id`; WhatsApp's `message_id`.
    if event.startswith(("email.", "sms.")):
        return text_field(data, "id") or text_field(data, "message_id")
    return text_field(data, "message_id")


def _event_id(event: str, payload: Data, data: Data, body: bytes) -> str:
    """No event id is documented (unconfirmed, see docs/providers.md): derived from what the event is
    about, so retries share it."""
    subject = next((value for name in SUBJECT_FIELDS if (value := text_field(data, name))), None)
    if subject is None:
        return derived_id(body)
    if event in ONCE_PER_SUBJECT:
        return f"{event}:{subject}"
    # The event's own time first: the envelope's may be the sending time (undocumented). Link
    # scanners click every link in the same second, so a click's id names its URL too.
    when = data[field] if (field := _time_field(data)) else payload.get("timestamp")
    return ":".join([event, subject, str(when), *filter(None, [text_field(data, "url")])])


def _occurred_at(payload: Data, data: Data) -> datetime:
    if payload.get("timestamp") is not None:
        return parse_timestamp(payload["timestamp"], "timestamp")
    field = _time_field(data)
    if field is None:
        raise PayloadInvalid("timestamp: missing, and data has no *_at time")
    return parse_timestamp(data[field], f"data.{field}")


def _time_field(data: Data) -> str | None:
    """The event's own time (`bounced_at`, `read_at`, …): the first `*_at` field of data."""
    return next((name for name in data if name.endswith("_at") and data[name] is not None), None)


def _smtp(data: Data, reason: str | None) -> Details:
    """An `error` that is an SMTP reply goes to the smtp_* fields; any other text is the reason."""
    error = text_field(data, "error")
    smtp = smtp_fields(error, SMTP_REPLY)
    if smtp["smtp_status_code"] is None:
        return {"reason": reason or error, **smtp, "smtp_response": None}
    return {"reason": reason, **smtp}


def _bounced(data: Data) -> Details:
    return {**_smtp(data, None), "bounce_class": text_field(data, "bounce_type")}


def _failed(data: Data) -> Details:
    reason = text_field(data, "error_message") or text_field(data, "reason")
    return {**_smtp(data, reason), "error_code": text_field(data, "error_code")}


def _inbound(data: Data) -> Details:
    to = text_field(data, "to")
    return {
        "subject": None,
        "from_address": text_field(data, "from"),
        "to": [to] if to else [],
        "route": None,
        "is_spam": None,
        "spam_score": None,
        "session_id": text_field(data, "session_id"),
    }


def _opened(data: Data) -> Details:
    return {
        "subject": text_field(data, "subject"),
        "first": None,
        "user_agent": None,
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": None,
    }


DETAILS: dict[str, Callable[[Data], Details]] = {
    "message.sent": lambda data: {"subject": text_field(data, "subject"), "session_id": text_field(data, "session_id")},
    "message.delivered": lambda data: {**_smtp(data, None), "session_id": text_field(data, "session_id")},
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.spam_complaint": lambda data: {"feedback_type": text_field(data, "feedback_type")},
    "message.failed": _failed,
    "message.opened": _opened,
    "message.clicked": lambda data: {**_opened(data), "url": text_field(data, "url"), "link_index": None},
    "message.read": lambda data: {"session_id": text_field(data, "session_id")},
    "message.inbound": _inbound,
    "session.disconnected": lambda data: {
        "session_id": text_field(data, "session_id"),
        "reason": text_field(data, "reason"),
    },
    "verification.completed": lambda data: {"verification_id": text_field(data, "verification_id")},
    "verification.expired": lambda data: {"verification_id": text_field(data, "verification_id")},
}


# --- Examples for `bridge send-test`: the documented fields of each event (docs/providers.md#sendapi-sendapi) ---

NOW = object()  # replaced by the example's time
PHONE = "+15555550123"
_EXAMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "email.sent": {"to": "user@example.com", "subject": "Hello from bridge send-test", "sent_at": NOW},
    "email.delivered": {"to": "user@example.com", "delivered_at": NOW},
    "email.opened": {"to": "user@example.com", "opened_at": NOW},
    "email.clicked": {"to": "user@example.com", "url": "https://example.com/welcome", "clicked_at": NOW},
    "email.bounced": {
        "to": "user@example.com",
        "bounce_type": "hard",
        "error": "550 5.1.1 User unknown",
        "bounced_at": NOW,
    },
    "email.complained": {"to": "user@example.com", "complained_at": NOW},
    "sms.sent": {"to": PHONE, "segments": 1, "provider": "send-test", "cost_usd": 0.0079},
    "sms.delivered": {"to": PHONE, "delivered_at": NOW},
    "sms.failed": {"to": PHONE, "error_code": "30003", "error_message": "Unreachable destination handset"},
    "verify.completed": {"to": PHONE, "channel": "sms", "verified_at": NOW},
    "verify.expired": {"to": PHONE, "channel": "sms", "expired_at": NOW},
    "message.received": {"from": PHONE, "type": "text", "content": {"body": "Hi from send-test"}, "received_at": NOW},
    "message.sent": {"to": PHONE, "type": "text", "status": "sent"},
    "message.delivered": {"delivered_at": NOW},
    "message.read": {"read_at": NOW},
    "message.failed": {"to": PHONE, "error_code": "131026", "error_message": "Message undeliverable"},
    "session.disconnected": {"reason": "logged_out"},
}
# Canonical types whose SendAPI event has another name.
EXAMPLE_FOR: dict[str, tuple[str, dict[str, Any]]] = {
    "message.hard_bounced": ("email.bounced", {}),
    "message.soft_bounced": ("email.bounced", {"bounce_type": "soft", "error": "452 4.2.2 Mailbox full"}),
    "message.spam_complaint": ("email.complained", {}),
    "message.opened": ("email.opened", {}),
    "message.clicked": ("email.clicked", {}),
    "message.inbound": ("message.received", {}),
    "verification.completed": ("verify.completed", {}),
    "verification.expired": ("verify.expired", {}),
}


def _example_subject(event: str) -> Data:
    """A fresh id of the kind the event is about, so every example is a new event."""
    fresh = uuid.uuid4().hex
    prefix = event.partition(".")[0]
    subjects = {
        "email": {"id": f"eml_{fresh}"},
        "sms": {"id": f"sms_{fresh}"},
        "verify": {"verification_id": f"ver_{fresh}"},
        "message": {"message_id": f"wamid_{fresh}", "session_id": "sess_send_test"},
        "session": {"session_id": f"sess_{fresh}"},
    }
    return subjects.get(prefix, {"id": fresh})


SPEC = ProviderSpec(name=NAME, source=SendAPISource, build=lambda io: SendAPI(), sender=SendAPISender)
