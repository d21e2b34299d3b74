"""Lettermint: `t=<unix>,v1=<hex>` HMAC-SHA256 signatures, one event per delivery (docs/providers.md, Lettermint)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.events import EVENT_TYPES, UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import (
    DIGITS,
    HEX_DIGEST,
    TimestampedSignature,
    check_age,
    hmac_hex,
    matches_any,
    single_header,
)
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    as_list,
    derived_id,
    flag_field,
    no_details,
    number_field,
    object_field,
    parse_json_object,
    parse_timestamp,
    string_field,
    stringify_map,
    text_field,
)
from bridge.settings import NoOptions, SecretSource

NAME = "lettermint"
SIGNATURE_HEADER = "x-lettermint-signature"
DELIVERY_HEADER = "x-lettermint-delivery"
ATTEMPT_HEADER = "x-lettermint-attempt"
LEGACY_TIMESTAMP_HEADER = "x-lettermint-timestamp"
LEGACY_PREFIX = "sha256="
MAX_ATTEMPT = 2**31 - 1  # Avro int


class LettermintSource(SecretSource):
    """`secrets`: one or more `whsec_…` signing secrets (old and new during rotation)."""

    provider: Literal["lettermint"]
    options: NoOptions = Field(default_factory=NoOptions)


class Lettermint:
    def verify(self, headers: Headers, body: bytes, source: LettermintSource, now: float) -> None:
        header = single_header(headers, SIGNATURE_HEADER)
        if header.startswith(LEGACY_PREFIX):
            timestamp, signatures = single_header(headers, LEGACY_TIMESTAMP_HEADER), [header[len(LEGACY_PREFIX) :]]
            if not HEX_DIGEST.fullmatch(signatures[0]):
                raise SignatureInvalid("the sha256= signature is not 64 hex digits", "malformed_header")
            if not DIGITS.fullmatch(timestamp):
                raise SignatureInvalid("the signed timestamp is not a number of seconds", "malformed_header")
        else:
            signed_header = TimestampedSignature.parse(header)
            timestamp, signatures = signed_header.timestamp, list(signed_header.signatures)
            if single_header(headers, DELIVERY_HEADER).strip() != timestamp:
                raise SignatureInvalid("X-Lettermint-Delivery does not equal the signed timestamp", "malformed_header")
        signed = timestamp.encode() + b"." + body
        expected = [_digest(secret, signed) for secret in source.secret_values()]
        if not matches_any(expected, (got.lower() for got in signatures)):
            raise SignatureInvalid("no signature matches a configured secret", "no_matching_signature")
        check_age(timestamp, now, source)

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        payload = parse_json_object(delivery.body)
        event = payload.get("event")
        data = payload.get("data")
        if not isinstance(event, str) or not event:
            raise PayloadInvalid("event: missing or not a string")
        if not isinstance(data, dict):
            raise PayloadInvalid("data: missing or not an object")
        stamp_field = "timestamp" if payload.get("timestamp") is not None else "created_at"
        event_type = event if event in MAPPED else UNMAPPED
        message_id = string_field(data, "message_id")
        event_id = string_field(payload, "id") or derived_id(delivery.body)
        tag = string_field(data, "tag")
        return [
            CanonicalEvent.of(
                delivery,
                event_id=event_id,
                event_type=event_type,
                provider_event=event,
                key=message_id or text_field(data, _KEY_FIELDS.get(event, "")) or event_id,
                occurred_at=parse_timestamp(payload.get(stamp_field), stamp_field),
                message_id=message_id,
                recipient=string_field(data, "recipient"),
                attempt=_attempt(delivery.headers),
                tags=(tag,) if tag else (),
                metadata=stringify_map(data.get("metadata")),
                details=DETAILS.get(event_type, no_details)(data),
            )
        ]


def signature_headers(body: bytes, secret: str, now: float) -> dict[str, str]:
    """The headers Lettermint sends with `body`, signed with `secret` at `now`."""
    timestamp = str(int(now))
    return {
        "X-Lettermint-Signature": f"t={timestamp},v1={_digest(secret, timestamp.encode() + b'.' + body)}",
        "X-Lettermint-Delivery": timestamp,
        "X-Lettermint-Attempt": "1",
        "Content-Type": "application/json",
    }


class LettermintSender:
    """`bridge send-test`: an example of any canonical type, signed with the source's first secret."""

    def example(self, event_type: str, now: datetime) -> bytes:
        data: dict[str, Any] = _EXAMPLE_DATA.get(event_type) or {
            "message_id": str(uuid.uuid4()),
            "recipient": "user@example.com",
            "subject": "Hello from bridge send-test",
            "metadata": {"sent_by": "bridge send-test"},
            "tag": "send-test",
            **_EXAMPLE_RESPONSES.get(event_type, {}),
        }
        event_id = ("test-" if event_type == "webhook.test" else "") + str(uuid.uuid4())
        envelope = {
            "id": event_id,
            "event": event_type,
            "timestamp": now.isoformat(timespec="milliseconds"),
            "data": data,
        }
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()

    def sign(self, body: bytes, source: LettermintSource, now: float) -> tuple[bytes, dict[str, str]]:
        return body, signature_headers(body, source.secret_values()[0], now)


def _digest(secret: str, signed: bytes) -> str:
    # The whole `whsec_...` string is the key, not base64-decoded (unlike Standard Webhooks).
    return hmac_hex(secret, signed)


def _attempt(headers: Headers) -> int | None:
    """The attempt number, or None where the header is absent or not a plausible count."""
    value = headers.get(ATTEMPT_HEADER, "")
    return int(value) if DIGITS.fullmatch(value) and 0 < int(value) <= MAX_ATTEMPT else None


# --- Payload mapping: Lettermint's event names are the canonical ones (docs/events.md). -------

MAPPED = frozenset(EVENT_TYPES) - {UNMAPPED}

# The record key for events about something other than a message.
_KEY_FIELDS = {"suppression.added": "value", "suppression.removed": "value", "webhook.test": "webhook_id"}


def _addresses(value: object) -> list[str]:
    items = as_list(value)
    return [
        item if isinstance(item, str) else str(item.get("email", "")) for item in items if isinstance(item, (str, dict))
    ]


def _smtp_result(data: dict[str, Any]) -> Details:
    response = object_field(data, "response")
    code = response.get("status_code")
    return {
        "reason": text_field(data, "reason"),
        "smtp_status_code": code if isinstance(code, int) and not isinstance(code, bool) else None,
        "smtp_enhanced_status_code": text_field(response, "enhanced_status_code"),
        "smtp_response": text_field(response, "content"),
    }


def _created(data: dict[str, Any]) -> Details:
    sender = object_field(data, "from")
    return {
        "subject": text_field(data, "subject"),
        "from_address": text_field(sender, "email"),
        "from_name": text_field(sender, "name"),
        "to": _addresses(data.get("to")),
        "cc": _addresses(data.get("cc")),
        "bcc": _addresses(data.get("bcc")),
        "reply_to": text_field(data, "reply_to"),
    }


def _opened(data: dict[str, Any]) -> Details:
    bot = object_field(data, "bot")
    return {
        "subject": text_field(data, "subject"),
        "first": flag_field(data, "first_open"),
        "user_agent": text_field(data, "user_agent"),
        "client_name": text_field(data, "client_name"),
        "client_type": text_field(data, "client_type"),
        "device_type": text_field(data, "device_type"),
        "is_bot": flag_field(bot, "detected"),
    }


def _clicked(data: dict[str, Any]) -> Details:
    index = data.get("link_index")
    return {
        **_opened(data),
        "first": flag_field(data, "first_click"),
        "url": text_field(data, "destination_url"),
        "link_index": index if isinstance(index, int) and not isinstance(index, bool) else None,
    }


def _policy_rejected(data: dict[str, Any]) -> Details:
    symbols = as_list(data.get("spam_symbols"))
    return {
        "subject": text_field(data, "subject"),
        "reason": text_field(data, "reason"),
        "spam_score": number_field(data, "score"),
        "spam_symbols": [str(s.get("name")) for s in symbols if isinstance(s, dict) and s.get("name")],
    }


def _inbound(data: dict[str, Any]) -> Details:
    sender = object_field(data, "from")
    return {
        "subject": text_field(data, "subject"),
        "from_address": text_field(sender, "email"),
        "to": _addresses(data.get("to")),
        "route": text_field(data, "route"),
        "is_spam": flag_field(data, "is_spam"),
        "spam_score": number_field(data, "spam_score"),
    }


def _suppression(data: dict[str, Any]) -> Details:
    return {
        "suppression_type": text_field(data, "type"),
        "value": text_field(data, "value"),
        "reason": text_field(data, "reason"),
    }


DETAILS: dict[str, Callable[[dict[str, Any]], Details]] = {
    "message.created": _created,
    "message.sent": lambda data: {"subject": text_field(data, "subject")},
    "message.delivered": _smtp_result,
    "message.deferred": _smtp_result,
    "message.soft_bounced": _smtp_result,
    "message.hard_bounced": _smtp_result,
    "message.failed": _smtp_result,
    "message.suppressed": lambda data: {"reason": text_field(data, "reason")},
    "message.policy_rejected": _policy_rejected,
    "message.opened": _opened,
    "message.clicked": _clicked,
    "message.inbound": _inbound,
    "suppression.added": _suppression,
    "suppression.removed": _suppression,
    "webhook.test": lambda data: {
        "webhook_id": text_field(data, "webhook_id"),
        "test_message": text_field(data, "message"),
    },
}

_EXAMPLE_RESPONSES: dict[str, dict[str, Any]] = {
    "message.delivered": {"response": {"status_code": 250, "enhanced_status_code": "2.0.0", "content": "OK"}},
    "message.hard_bounced": {
        "response": {"status_code": 550, "enhanced_status_code": "5.1.1", "content": "No such user"}
    },
    "message.soft_bounced": {
        "response": {"status_code": 452, "enhanced_status_code": "4.2.2", "content": "Mailbox full"}
    },
}
_EXAMPLE_DATA: dict[str, dict[str, Any]] = {
    "suppression.added": {"type": "email", "value": "user@example.com", "reason": "hard_bounce"},
    "suppression.removed": {"type": "email", "value": "user@example.com", "reason": "manual"},
    "webhook.test": {"message": "This is a test webhook from bridge send-test", "webhook_id": str(uuid.uuid4())},
}


SPEC = ProviderSpec(name=NAME, source=LettermintSource, build=lambda io: Lettermint(), sender=LettermintSender)
