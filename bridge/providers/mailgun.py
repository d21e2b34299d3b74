"""Mailgun: HMAC-SHA256 of `timestamp + token` inside the JSON body, one event per delivery
(docs/providers.md#mailgun-mailgun)."""

from __future__ import annotations

import heapq
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

from pydantic import Field

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import DIGITS, HEX_DIGEST, check_age, hmac_hex, matches_any
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    as_list,
    no_details,
    object_field,
    parse_json_object,
    string_field,
    stringify_map,
    unix_time,
)
from bridge.settings import ConfigModel, SecretSource

NAME = "mailgun"
SIGNATURE_FIELD = "signature"
EVENT_DATA_FIELD = "event-data"
PARENT_SIGNATURE = "parent-signature"  # subaccount domains: signed with the primary account's key
ENHANCED_CODE = re.compile(r"([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![0-9.])")
# Mailgun's tokens are 50 characters; a longer one is not Mailgun's, and the bound caps cache memory.
MAX_TOKEN_LENGTH = 256
TOKEN_BYTES = 25  # 50 hex characters, like Mailgun's
# ~235 bytes an entry with its 50-character token (measured): ~12 MB per source at most. Eviction
# starts above 50 000 / 300 s ≈ 166 deliveries/s sustained, at the default tolerance.
REPLAY_CACHE_SIZE = 50_000
REPLAYED = "replayed token"
MAX_ATTEMPT = 2**31 - 1  # Avro int


class MailgunOptions(ConfigModel):
    replay_cache_size: int = Field(
        REPLAY_CACHE_SIZE, ge=1, description="Tokens remembered per source for replay detection (see TokenCache)."
    )


class MailgunSource(SecretSource):
    """`secrets`: the HTTP webhook signing key(s), old and new during rotation."""

    provider: Literal["mailgun"]
    options: MailgunOptions = Field(default_factory=MailgunOptions)


class TokenCache:
    """The tokens of verified deliveries, each until its signed timestamp leaves the tolerance window.

    Mailgun's advice against replay is to accept each `token` once. An entry is needed only while
    its delivery could still pass the timestamp check (until `timestamp + tolerance`); after that a
    replay is stale anyway, so the entry is dropped. Past `capacity` the entry closest to expiry
    goes first, so memory stays bounded even above capacity / tolerance deliveries a second, at the
    price of not catching a replay of an evicted token.

    The cache lives in one process. With several replicas (or uvicorn workers) a replay that reaches
    another replica within the window is not caught; consumers dedupe on `event_id`, which is the
    token, so a replay that gets through is a duplicate record, not a new event.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._expiry: dict[str, int] = {}
        self._queue: list[tuple[int, str]] = []  # (expires_at, token), soonest first

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, token: str, expires_at: int, now: int) -> bool:
        """Remember `token` until `expires_at`; False if it is already remembered (a replay)."""
        self._expire(now)
        if token in self._expiry:
            return False
        self._expiry[token] = expires_at
        heapq.heappush(self._queue, (expires_at, token))
        while len(self._expiry) > self._capacity:
            self._pop()
        return True

    def _expire(self, now: int) -> None:
        while self._queue and self._queue[0][0] < now:
            self._pop()

    def _pop(self) -> None:
        _, token = heapq.heappop(self._queue)
        del self._expiry[token]


@dataclass(frozen=True)
class _Signature:
    timestamp: str
    token: str
    digests: tuple[str, ...]  # `signature`, and `parent-signature` where present


class Mailgun:
    """Verifies and maps Mailgun webhooks. `SPEC.build` makes one per app, and it holds that app's
    replay caches: one TokenCache per source, made on the source's first delivery."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenCache] = {}

    def verify(self, headers: Headers, body: bytes, source: MailgunSource, now: float) -> None:
        signature = _signature(body)
        expected = [_digest(secret, signature.timestamp, signature.token) for secret in source.secret_values()]
        if not matches_any(expected, signature.digests):
            raise SignatureInvalid("no signature matches a configured signing key", "no_matching_signature")
        check_age(signature.timestamp, now, source)
        # Only now, once the delivery is authentic and fresh, may its token enter the cache.
        expires_at = int(signature.timestamp) + source.tolerance_seconds
        # Whole seconds, for the cache as for the window.
        if not self._cache(source).claim(signature.token, expires_at, int(now)):
            raise SignatureInvalid(REPLAYED, "replayed")

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        payload = parse_json_object(delivery.body)
        data = payload.get(EVENT_DATA_FIELD)
        if not isinstance(data, dict):
            raise PayloadInvalid(f"{EVENT_DATA_FIELD}: missing or not an object")
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise PayloadInvalid(f"{EVENT_DATA_FIELD}.event: missing or not a string")
        event_id = string_field(object_field(payload, SIGNATURE_FIELD), "token")
        if event_id is None:
            raise PayloadInvalid(f"{SIGNATURE_FIELD}.token: missing or not a string")
        event_type = _event_type(event, data)
        message_id = string_field(_headers(data), "message-id")
        return [
            CanonicalEvent.of(
                delivery,
                event_id=event_id,
                event_type=event_type,
                provider_event=event,
                key=message_id or event_id,
                occurred_at=_occurred_at(data.get("timestamp")),
                message_id=message_id,
                recipient=string_field(data, "recipient"),
                attempt=_attempt(object_field(data, "delivery-status")),
                tags=_tags(data.get("tags")),
                metadata=stringify_map(data.get("user-variables")),
                details=DETAILS.get(event_type, no_details)(data),
            )
        ]

    def _cache(self, source: MailgunSource) -> TokenCache:
        cache = self._tokens.get(source.name)
        if cache is None:
            cache = self._tokens[source.name] = TokenCache(source.options.replay_cache_size)
        return cache


class MailgunSender:
    """`bridge send-test`: an example delivery, signed in its body with the source's first key."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """A fresh, UNSIGNED delivery of `event_type`: its `signature.signature` is empty until
        `sign` fills it in. Raises ValueError for a type Mailgun has no event for."""
        if event_type not in _EXAMPLES:
            raise ValueError(f"mailgun sends no {event_type!r}; it sends {', '.join(_EXAMPLES)}")
        event, extra = _EXAMPLES[event_type]
        stamp = now.timestamp()
        data = {
            "event": event,
            "id": uuid.uuid4().hex[:22],
            "timestamp": stamp,
            "recipient": "user@example.com",
            "message": {
                "headers": {
                    "message-id": f"{uuid.uuid4().hex}@send-test.example.com",
                    "from": "Bridge <send-test@example.com>",
                    "to": "user@example.com",
                    "subject": "Hello from bridge send-test",
                }
            },
            "tags": ["send-test"],
            "user-variables": {"sent_by": "bridge send-test"},
            **extra,
        }
        signature = {"timestamp": str(int(stamp)), "token": secrets.token_hex(TOKEN_BYTES), "signature": ""}
        body = {SIGNATURE_FIELD: signature, EVENT_DATA_FIELD: data}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def sign(self, body: bytes, source: MailgunSource, now: float) -> tuple[bytes, dict[str, str]]:
        # Mailgun sends no signature header: the signature is in the body, and the headers say only JSON.
        return sign_body(body, source.secret_values()[0], now), {"Content-Type": "application/json"}


def sign_body(body: bytes, secret: str, now: float) -> bytes:
    """`body` with its `signature` object signed like Mailgun does: timestamp `now`, the body's
    token (a fresh one if it has none), HMAC-SHA256 of `timestamp + token`, hex."""
    try:
        payload = parse_json_object(body)
    except PayloadInvalid as error:
        raise ValueError(f"mailgun signs inside a JSON object body: {error}") from None
    block = payload.get(SIGNATURE_FIELD)
    token = block.get("token") if isinstance(block, dict) else None
    token = token if isinstance(token, str) and token else secrets.token_hex(TOKEN_BYTES)
    timestamp = str(int(now))
    payload[SIGNATURE_FIELD] = {"timestamp": timestamp, "token": token, "signature": _digest(secret, timestamp, token)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _signature(body: bytes) -> _Signature:
    """The body's `signature` object. Nothing is authenticated yet, so any defect is SignatureInvalid."""
    try:
        payload = parse_json_object(body)
    except PayloadInvalid as error:
        raise SignatureInvalid(f"no signature to check: {error}", "malformed_body") from None
    block = payload.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        raise SignatureInvalid(f"the body has no {SIGNATURE_FIELD} object", "malformed_body")
    token = block.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise SignatureInvalid(
            f"{SIGNATURE_FIELD}.token: missing, empty or longer than {MAX_TOKEN_LENGTH}", "malformed_body"
        )
    if not _is_text(token):  # a JSON "\ud800" escape parses, but cannot be signed
        raise SignatureInvalid(f"{SIGNATURE_FIELD}.token holds a lone surrogate, which is not text", "malformed_body")
    digest = block.get("signature")
    if not isinstance(digest, str) or not HEX_DIGEST.fullmatch(digest):
        raise SignatureInvalid(f"{SIGNATURE_FIELD}.signature is not 64 hex digits", "malformed_body")
    parent = block.get(PARENT_SIGNATURE)
    extra = (parent.lower(),) if isinstance(parent, str) and HEX_DIGEST.fullmatch(parent) else ()
    return _Signature(_timestamp(block.get("timestamp")), token, (digest.lower(), *extra))


def _is_text(value: str) -> bool:
    """Whether `value` has a UTF-8 form: JSON's `\\ud800` escapes give strings that have none."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _timestamp(value: object) -> str:
    """Mailgun sends a string of digits; a JSON integer is accepted too and signed as its digits
    (unconfirmed, see docs/providers.md)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not DIGITS.fullmatch(value):
        raise SignatureInvalid(f"{SIGNATURE_FIELD}.timestamp is not a number of seconds", "malformed_body")
    return value


def _digest(secret: str, timestamp: str, token: str) -> str:
    # The HTTP webhook signing key as-is; timestamp and token concatenated with no separator.
    return hmac_hex(secret, (timestamp + token).encode())


# --- Payload mapping (docs/events.md, Mailgun column) -------------------------------------------

MAPPED = {
    "accepted": "message.created",
    "delivered": "message.delivered",
    "rejected": "message.failed",
    "opened": "message.opened",
    "clicked": "message.clicked",
    "unsubscribed": "message.unsubscribed",
    "complained": "message.spam_complaint",
}
# `failed` is one event name for both: `severity` says whether Mailgun gives up or retries.
FAILED_BY_SEVERITY = {"permanent": "message.hard_bounced", "temporary": "message.soft_bounced"}


def _event_type(event: str, data: dict[str, Any]) -> str:
    if event == "failed":
        return FAILED_BY_SEVERITY.get(str(data.get("severity")), UNMAPPED)
    return MAPPED.get(event, UNMAPPED)


def _occurred_at(value: object) -> datetime:
    """`event-data.timestamp`: Unix seconds with a fraction."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise PayloadInvalid(f"{EVENT_DATA_FIELD}.timestamp: expected Unix seconds, got {value!r}")
    return unix_time(value, f"{EVENT_DATA_FIELD}.timestamp")  # NaN and infinities are out of its range


def _headers(data: dict[str, Any]) -> dict[str, Any]:
    return object_field(object_field(data, "message"), "headers")


def _tags(value: object) -> tuple[str, ...]:
    items = as_list(value)
    return tuple(item if isinstance(item, str) else json.dumps(item, separators=(",", ":")) for item in items)


def _attempt(status: dict[str, Any]) -> int | None:
    value = status.get("attempt-no")
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ATTEMPT else None


def _smtp_code(value: object) -> int | None:
    """A three-digit reply code; Mailgun's `code: 0` ("none") and non-numbers become None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 999 else None


def _enhanced_code(status: dict[str, Any]) -> str | None:
    """RFC 3463 x.y.z: an `enhanced-code` field (unconfirmed, see docs/providers.md), a code in that
    form, or the response's prefix."""
    for candidate in (status.get("enhanced-code"), status.get("code"), status.get("message")):
        match = ENHANCED_CODE.match(candidate) if isinstance(candidate, str) else None
        if match:
            return match.group(1)
    return None


def _smtp_result(data: dict[str, Any]) -> Details:
    status = object_field(data, "delivery-status")
    return {
        "reason": string_field(data, "reason"),
        "smtp_status_code": _smtp_code(status.get("code")),
        "smtp_enhanced_status_code": _enhanced_code(status),
        # `message` is the receiving server's reply; `description` Mailgun's own words, where it has no reply.
        "smtp_response": string_field(status, "message") or string_field(status, "description"),
    }


def _rejected(data: dict[str, Any]) -> Details:
    reject = object_field(data, "reject")
    return {**_smtp_result(data), "reason": string_field(reject, "reason") or string_field(reject, "description")}


def _created(data: dict[str, Any]) -> Details:
    headers = _headers(data)
    name, address = parseaddr(string_field(headers, "from") or "")
    return {
        "subject": string_field(headers, "subject"),
        "from_address": address or None,
        "from_name": name or None,
        "to": _addresses(headers, "to"),
        "cc": _addresses(headers, "cc"),
        "bcc": [],  # never in the message's headers
        "reply_to": string_field(headers, "reply-to"),
    }


def _addresses(headers: dict[str, Any], name: str) -> list[str]:
    return [address for _, address in getaddresses([string_field(headers, name) or ""]) if address]


def _opened(data: dict[str, Any]) -> Details:
    client = object_field(data, "client-info")
    return {
        "subject": string_field(_headers(data), "subject"),
        "first": None,
        "user_agent": string_field(client, "user-agent"),
        "client_name": string_field(client, "client-name"),
        "client_type": string_field(client, "client-type"),
        "device_type": string_field(client, "device-type"),
        "is_bot": None,
        "ip": string_field(data, "ip"),
    }


def _clicked(data: dict[str, Any]) -> Details:
    return {**_opened(data), "url": string_field(data, "url"), "link_index": None}


DETAILS: dict[str, Callable[[dict[str, Any]], Details]] = {
    "message.created": _created,
    "message.delivered": _smtp_result,
    "message.hard_bounced": _smtp_result,
    "message.soft_bounced": _smtp_result,
    "message.failed": _rejected,
    "message.opened": _opened,
    "message.clicked": _clicked,
}

_OK = {"delivery-status": {"attempt-no": 1, "code": 250, "message": "OK", "description": ""}}
_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "message.created": ("accepted", {"method": "HTTP"}),
    "message.delivered": ("delivered", _OK),
    "message.hard_bounced": (
        "failed",
        {
            "severity": "permanent",
            "reason": "bounce",
            "delivery-status": {"attempt-no": 1, "code": 550, "message": "5.1.1 No such user", "description": ""},
        },
    ),
    "message.soft_bounced": (
        "failed",
        {
            "severity": "temporary",
            "reason": "generic",
            "delivery-status": {"attempt-no": 2, "code": 452, "message": "4.2.2 Mailbox full", "retry-seconds": 600},
        },
    ),
    "message.failed": ("rejected", {"reject": {"reason": "Sandbox subdomains are for test purposes only."}}),
    "message.opened": ("opened", {"ip": "203.0.113.7", "client-info": {"client-name": "Chrome"}}),
    "message.clicked": ("clicked", {"url": "https://example.com/send-test", "ip": "203.0.113.7"}),
    "message.unsubscribed": ("unsubscribed", {}),
    "message.spam_complaint": ("complained", {}),
}


SPEC = ProviderSpec(name=NAME, source=MailgunSource, build=lambda io: Mailgun(), sender=MailgunSender)
