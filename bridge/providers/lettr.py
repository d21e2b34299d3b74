"""Lettr: Basic auth, OAuth2 Bearer tokens we issue, `lettr-signature` HMAC; SparkPost-style batches (spec §2)."""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.datastructures import Headers

from bridge.errors import PayloadInvalid, SignatureInvalid, StaleTimestamp, UnknownSource
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.providers.base import (
    Details,
    as_list,
    check_age,
    derived_id,
    no_details,
    parse_json,
    parse_options,
    parse_timestamp,
    single_header,
    stringify_map,
    text_field,
)
from bridge.settings import SourceSettings

SIGNATURE_HEADER = "lettr-signature"
AUTHORIZATION_HEADER = "authorization"
HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
DIGITS = re.compile(r"[0-9]{1,16}")
# SparkPost writes `timestamp` as a string of Unix seconds; Lettr's docs show ISO 8601. Both are read.
UNIX_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
SMTP_CODE = re.compile(r"[245][0-9]{2}")
ENHANCED_STATUS = re.compile(r"(?<![.\d])[245]\.\d{1,3}\.\d{1,3}(?![.\d])")

GRANT_TYPE = "client_credentials"
TOKEN_VERSION = "v1"
# The token key is derived from the client secret, never the secret itself, and bound to this use.
TOKEN_KEY_LABEL = b"webhook-kafka-bridge/lettr/oauth2-access-token/v1"
DEFAULT_TOKEN_TTL_SECONDS = 600
# The secret keys the token HMAC: a captured token must not be brute-forceable offline.
MIN_CLIENT_SECRET_CHARS = 16

# SparkPost bounce classification (support-docs deliverability/bounce-classification-codes.md): the
# Hard (10, 30, 90) and Admin (25, 80) categories are the ones SparkPost says warrant suppression.
# Soft, Block and Undetermined classes, and bounces without a class, are soft: usually temporary.
HARD_BOUNCE_CLASSES = frozenset({10, 25, 30, 80, 90})
BOUNCES = frozenset({"bounce", "out_of_band"})
INITIAL_OPENS = frozenset({"initial_open", "amp_initial_open"})
# Lettr's subscription names are `<category>.<type>`, with the legacy `engagament` spelling.
TYPE_PREFIXES = ("message.", "engagement.", "engagament.", "generation.", "unsubscribe.", "relay.")
# SparkPost's webhook validation batch is `[{"msys": {}}]`: published as webhook.test.
PING_EVENT = "ping"


class BasicCredential(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value:
            raise ValueError("a Basic username cannot contain ':' (RFC 7617)")
        return value

    @field_validator("password")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the password is empty (is its environment variable set?)")
        return value


class OAuthClient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr

    @field_validator("client_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_CLIENT_SECRET_CHARS:
            raise ValueError(f"needs at least {MIN_CLIENT_SECRET_CHARS} characters (it keys the token signature)")
        return value


class OAuth2Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Several entries (the same client_id twice, too) while a secret is rotated.
    clients: list[OAuthClient] = Field(min_length=1)
    token_ttl_seconds: int = Field(DEFAULT_TOKEN_TTL_SECONDS, ge=30, le=86_400)


class LettrOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Several pairs while credentials are rotated; any one of them is accepted.
    basic_auth: list[BasicCredential] = []
    oauth2: OAuth2Options | None = None


class Lettr:
    """Every configured credential must pass: Basic or Bearer (Authorization), and the signature."""

    name = "lettr"

    def check(self, source: SourceSettings) -> object:
        options = parse_options(LettrOptions, source)
        if options.basic_auth and options.oauth2:
            raise ValueError(
                "options: Lettr sends one Authorization header per delivery; configure basic_auth or oauth2, not both"
            )
        if not (options.basic_auth or options.oauth2 or source.secrets):
            raise ValueError("lettr needs credentials: options.basic_auth, options.oauth2 and/or secrets")
        return options

    def verify(self, headers: Headers, body: bytes, source: SourceSettings, now: float) -> None:
        options = _options(source)
        if options.basic_auth:
            _check_basic(single_header(headers, AUTHORIZATION_HEADER), options.basic_auth)
        if options.oauth2 is not None:
            _check_bearer(single_header(headers, AUTHORIZATION_HEADER), options.oauth2.clients, source.name, now)
        if source.secrets:
            _check_signature(single_header(headers, SIGNATURE_HEADER), body, source, now)

    def issue_token(
        self, form: Mapping[str, str], authorization: str | None, source: SourceSettings, now: float
    ) -> dict[str, Any]:
        """RFC 6749 §4.4 client credentials; the token is stateless, so any replica verifies it."""
        oauth = _options(source).oauth2
        if oauth is None:
            raise UnknownSource(f"source {source.name!r} has no options.oauth2, so no token endpoint")
        client = _authenticate_client(_client_credentials(form, authorization), oauth.clients)
        if form.get("grant_type") != GRANT_TYPE:
            raise PayloadInvalid(f"grant_type must be {GRANT_TYPE}")
        expires = int(now) + oauth.token_ttl_seconds
        token = _mint(client, source.name, expires)
        return {"access_token": token, "token_type": "Bearer", "expires_in": oauth.token_ttl_seconds}

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        return [_event(element, f"[{index}]", delivery) for index, element in enumerate(_parse_batch(delivery.body))]

    def sign(self, body: bytes, secret: str, now: float) -> dict[str, str]:
        """`secret` is a signature secret; the knowledge-base form: hex HMAC-SHA256 of the raw body."""
        if not secret:
            raise NotImplementedError(
                "a Lettr test delivery is signed with a lettr-signature secret and this source has none; "
                "Basic and Bearer credentials are not built by send-test (curl -u user:password works for Basic)"
            )
        return {SIGNATURE_HEADER: _hex_hmac(secret, body), "Content-Type": "application/json"}

    def example(self, event_type: str, now: datetime) -> bytes:
        if event_type == "webhook.test":
            return b'[{"msys":{}}]'
        if event_type not in _EXAMPLES:
            sendable = ", ".join(sorted([*_EXAMPLES, "webhook.test"]))
            raise ValueError(f"Lettr sends no event that maps to {event_type}; it can send: {sendable}")
        category, kind, extra = _EXAMPLES[event_type]
        data = {"type": kind, **_example_common(kind, now), **extra}
        return json.dumps([{"msys": {category: data}}], separators=(",", ":"), ensure_ascii=False).encode()


def _options(source: SourceSettings) -> LettrOptions:
    options = source.parsed_options
    return options if isinstance(options, LettrOptions) else parse_options(LettrOptions, source)


# --- Credentials ---------------------------------------------------------------------------------


def _credential(header: str, scheme: str) -> str:
    given, _, value = header.strip().partition(" ")
    if given.lower() != scheme.lower():
        raise SignatureInvalid(f"expected Authorization: {scheme}")
    return value.strip()


def _decode_basic(header: str) -> tuple[bytes, bytes]:
    try:
        decoded = base64.b64decode(_credential(header, "Basic"), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("the Basic credentials are not base64") from None
    user, colon, password = decoded.partition(b":")
    if not colon:
        raise SignatureInvalid("the Basic credentials have no ':'")
    return user, password


def _same(given: bytes, configured: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII strings.
    return hmac.compare_digest(given, configured.encode())


def _check_basic(header: str, credentials: Sequence[BasicCredential]) -> None:
    user, password = _decode_basic(header)
    # Every pair is compared, so the time taken does not say which one (or which half) matched.
    matches = [_same(user, pair.username) & _same(password, pair.password.get_secret_value()) for pair in credentials]
    if not any(matches):
        raise SignatureInvalid("the Basic credentials match no configured pair")


def _client_credentials(form: Mapping[str, str], authorization: str | None) -> list[tuple[bytes, bytes]]:
    """Candidate (client_id, client_secret) pairs, from HTTP Basic or from the form (RFC 6749 §2.3.1)."""
    basic = authorization is not None and authorization.strip()[:6].lower() == "basic "
    if basic and "client_secret" in form:
        raise SignatureInvalid("client credentials sent both as Basic and in the form; use one method")
    if basic:
        user, password = _decode_basic(authorization or "")
        # The RFC form-encodes them before base64; many clients do not. Either is accepted.
        decoded = (unquote_to_bytes(user.replace(b"+", b" ")), unquote_to_bytes(password.replace(b"+", b" ")))
        return [(user, password), decoded]
    if "client_id" not in form or "client_secret" not in form:
        raise SignatureInvalid("no client credentials (Basic, or client_id and client_secret in the form)")
    return [(form["client_id"].encode(), form["client_secret"].encode())]


def _authenticate_client(candidates: list[tuple[bytes, bytes]], clients: Sequence[OAuthClient]) -> OAuthClient:
    matches = [
        (_same(client_id, client.client_id) & _same(secret, client.client_secret.get_secret_value()), client)
        for client_id, secret in candidates
        for client in clients
    ]
    owner = next((client for matched, client in matches if matched), None)
    if owner is None:
        raise SignatureInvalid("the client credentials match no configured OAuth2 client")
    return owner


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_signature(client: OAuthClient, signed: str) -> str:
    key = hmac.new(client.client_secret.get_secret_value().encode(), TOKEN_KEY_LABEL, hashlib.sha256).digest()
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def _mint(client: OAuthClient, source: str, expires: int) -> str:
    """`v1.<base64url claims>.<base64url HMAC>`: claims {cid, src, exp}, key derived from the client secret."""
    claims = json.dumps({"cid": client.client_id, "src": source, "exp": expires}, separators=(",", ":"))
    signed = f"{TOKEN_VERSION}.{_b64(claims.encode())}"
    return f"{signed}.{_token_signature(client, signed)}"


def _check_bearer(header: str, clients: Sequence[OAuthClient], source: str, now: float) -> None:
    signed, dot, signature = _credential(header, "Bearer").rpartition(".")
    version, _, payload = signed.partition(".")
    if not dot or version != TOKEN_VERSION:
        raise SignatureInvalid("the Bearer token is not one this bridge issued")
    # The signature is checked against every client's key before the claims are read.
    matches = [(hmac.compare_digest(_token_signature(c, signed).encode(), signature.encode()), c) for c in clients]
    owner = next((client for matched, client in matches if matched), None)
    if owner is None:
        raise SignatureInvalid("the Bearer token's signature matches no configured OAuth2 client")
    claims = _claims(payload)
    if claims.get("cid") != owner.client_id or claims.get("src") != source:
        raise SignatureInvalid("the Bearer token was issued for another client or source")
    expires = claims.get("exp")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise SignatureInvalid("the Bearer token has no expiry")
    if now >= expires:
        raise StaleTimestamp(f"the Bearer token expired {int(now) - expires} s ago")


def _claims(payload: str) -> dict[str, Any]:
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise SignatureInvalid("the Bearer token's claims are unreadable") from None
    if not isinstance(claims, dict):
        raise SignatureInvalid("the Bearer token's claims are not an object")
    return claims


# --- lettr-signature: both documented forms (spec §2.1, [U]) -------------------------------------


def _hex_hmac(secret: str, signed: bytes) -> str:
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _parse_timestamped(header: str) -> tuple[str, list[str]]:
    """`t=<unix>,v1=<hex>[,v1=...]`, the pre-2026 authorization page; unknown keys are skipped."""
    timestamps, signatures = [], []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1" and HEX_DIGEST.fullmatch(value.strip()):
            signatures.append(value.strip())
    if len(timestamps) != 1 or not DIGITS.fullmatch(timestamps[0]):
        raise SignatureInvalid("the lettr-signature header needs exactly one numeric t=")
    if not signatures:
        raise SignatureInvalid("the lettr-signature header has no well-formed v1=")
    return timestamps[0], signatures


def _check_signature(header: str, body: bytes, source: SourceSettings, now: float) -> None:
    value = header.strip()
    # A plain hex digest never contains '='; the timestamped form always does.
    if "=" in value:
        timestamp, signatures = _parse_timestamped(value)
        signed = timestamp.encode() + b"." + body
    elif HEX_DIGEST.fullmatch(value):
        timestamp, signatures, signed = None, [value], body
    else:
        raise SignatureInvalid("lettr-signature is neither 64 hex digits nor t=...,v1=...")
    expected = [_hex_hmac(secret, signed).encode() for secret in source.secret_values()]
    if not any(hmac.compare_digest(want, got.lower().encode()) for want in expected for got in signatures):
        raise SignatureInvalid("no lettr-signature matches a configured secret")
    if timestamp is not None:
        check_age(timestamp, now, source)


# --- Payload: a JSON array of {"msys": {"<category>_event": {...}}} ------------------------------


def _parse_batch(body: bytes) -> list[dict[str, Any]]:
    value = parse_json(body)
    if not isinstance(value, list):
        raise PayloadInvalid(f"body is JSON {type(value).__name__}, expected an array of msys objects")
    for index, element in enumerate(value):
        if not isinstance(element, dict) or not isinstance(element.get("msys"), dict):
            raise PayloadInvalid(f"[{index}]: not an object with an msys object")
    return value


def _event(element: dict[str, Any], where: str, delivery: Delivery) -> CanonicalEvent:
    msys: dict[str, Any] = element["msys"]
    raw = json.dumps(element, separators=(",", ":"), ensure_ascii=False)
    if not msys:
        return _ping(element, raw, delivery)
    if len(msys) != 1:
        raise PayloadInvalid(f"{where}.msys: expected one event category, got {', '.join(sorted(msys))}")
    [(category, data)] = msys.items()
    if not isinstance(data, dict):
        raise PayloadInvalid(f"{where}.msys.{category}: not an object")
    provider_event = data.get("type")
    if not isinstance(provider_event, str) or not provider_event:
        raise PayloadInvalid(f"{where}.msys.{category}.type: missing or not a string")
    kind = _kind(provider_event)
    event_type = _bounce_type(data) if kind in BOUNCES else TYPES.get(kind, UNMAPPED)
    message_id = text_field(data, "message_id")
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    event_id = text_field(data, "event_id") or text_field(data, "id") or _element_id(element)
    return CanonicalEvent(
        event_id=event_id,
        event_type=event_type,
        provider=Lettr.name,
        source=delivery.source,
        provider_event=provider_event,
        key=message_id or recipient or event_id,
        occurred_at=_occurred_at(data.get("timestamp"), f"{where}.msys.{category}.timestamp"),
        received_at=delivery.received_at,
        raw=raw,
        message_id=message_id,
        recipient=recipient,
        tags=tuple(tag for tag in as_list(data.get("rcpt_tags")) if isinstance(tag, str)),
        metadata=stringify_map(data.get("rcpt_meta")),
        details=DETAILS.get(event_type, no_details)(data, kind),
    )


def _ping(element: dict[str, Any], raw: str, delivery: Delivery) -> CanonicalEvent:
    """The validation batch has no time of its own: it happened as it arrived."""
    event_id = _element_id(element)
    return CanonicalEvent(
        event_id=event_id,
        event_type="webhook.test",
        provider=Lettr.name,
        source=delivery.source,
        provider_event=PING_EVENT,
        key=event_id,
        occurred_at=delivery.received_at,
        received_at=delivery.received_at,
        raw=raw,
    )


def _kind(provider_event: str) -> str:
    """`engagament.initial_open`, `engagement.initial_open` and `initial_open` are one type."""
    lowered = provider_event.lower()
    prefix = next((prefix for prefix in TYPE_PREFIXES if lowered.startswith(prefix)), "")
    return lowered[len(prefix) :]


def _bounce_class(data: dict[str, Any]) -> int | None:
    value = text_field(data, "bounce_class")
    return int(value) if value is not None and DIGITS.fullmatch(value) else None


def _bounce_type(data: dict[str, Any]) -> str:
    hard = _bounce_class(data) in HARD_BOUNCE_CLASSES
    return "message.hard_bounced" if hard else "message.soft_bounced"


def _occurred_at(value: object, field: str) -> datetime:
    if isinstance(value, str) and UNIX_SECONDS.fullmatch(value):
        return _from_unix(float(value), field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_unix(value, field)
    return parse_timestamp(value, field)


def _from_unix(seconds: float, field: str) -> datetime:
    try:
        if seconds < 0:
            raise ValueError("negative")
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadInvalid(f"{field}: not a plausible Unix time: {seconds!r}") from None


def _element_id(element: dict[str, Any]) -> str:
    """Key order and whitespace do not change it; lone surrogates do not crash it."""
    canonical = json.dumps(element, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return derived_id(canonical.encode("utf-8", "surrogatepass"))


# --- Mapping by meaning (events.md, Lettr column; refinements in the report) ----------------------

TYPES = {
    "injection": "message.created",
    "delivery": "message.delivered",
    "delay": "message.deferred",
    "spam_complaint": "message.spam_complaint",
    "policy_rejection": "message.policy_rejected",
    "generation_failure": "message.failed",
    "generation_rejection": "message.failed",
    "open": "message.opened",
    "initial_open": "message.opened",
    "amp_open": "message.opened",
    "amp_initial_open": "message.opened",
    "click": "message.clicked",
    "amp_click": "message.clicked",
    "list_unsubscribe": "message.unsubscribed",
    "link_unsubscribe": "message.unsubscribed",
    # The inbound message handed to your endpoint, the event Lettr's docs say to process. The other
    # relay_* events (queued, rejected, endpoint temp/perm failure) have no canonical type: unmapped.
    "relay_delivery": "message.inbound",
}

# Which recipient list of message.created the event's single recipient belongs to.
RECIPIENT_LISTS = {"to": "to", "cc": "cc", "bcc": "bcc"}


def _sender(data: dict[str, Any]) -> tuple[str | None, str | None]:
    name, address = email.utils.parseaddr(text_field(data, "friendly_from") or "")
    return address or text_field(data, "msg_from"), name or None


def _created(data: dict[str, Any], kind: str) -> Details:
    address, name = _sender(data)
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    listed = RECIPIENT_LISTS.get(text_field(data, "rcpt_type") or "to")
    lists: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
    if recipient and listed:
        lists[listed].append(recipient)
    return {
        "subject": text_field(data, "subject"),
        "from_address": address,
        "from_name": name,
        **lists,
        "reply_to": None,
    }


def _smtp_result(data: dict[str, Any], kind: str) -> Details:
    code = text_field(data, "error_code")
    responses = [text for text in (text_field(data, "raw_reason"), text_field(data, "reason")) if text]
    enhanced = next((found.group() for text in responses if (found := ENHANCED_STATUS.search(text))), None)
    return {
        "reason": text_field(data, "reason"),
        "smtp_status_code": int(code) if code and SMTP_CODE.fullmatch(code) else None,
        "smtp_enhanced_status_code": enhanced,
        "smtp_response": text_field(data, "raw_reason"),
    }


def _classified(data: dict[str, Any], kind: str) -> Details:
    return {**_smtp_result(data, kind), "bounce_class": text_field(data, "bounce_class")}


def _failed(data: dict[str, Any], kind: str) -> Details:
    return {**_smtp_result(data, kind), "error_code": text_field(data, "error_code")}


def _opened(data: dict[str, Any], kind: str) -> Details:
    return {
        "subject": text_field(data, "subject"),
        # initial_* is the first open; SparkPost also sends `open` for a first open, so it says nothing.
        "first": True if kind in INITIAL_OPENS else None,
        "user_agent": text_field(data, "user_agent"),
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": text_field(data, "ip_address"),
    }


def _clicked(data: dict[str, Any], kind: str) -> Details:
    return {**_opened(data, kind), "url": text_field(data, "target_link_url"), "link_index": None}


def _policy_rejected(data: dict[str, Any], kind: str) -> Details:
    return {
        "subject": text_field(data, "subject"),
        "reason": text_field(data, "reason"),
        "spam_score": None,
        "spam_symbols": [],
    }


def _inbound(data: dict[str, Any], kind: str) -> Details:
    recipient = text_field(data, "rcpt_to") or text_field(data, "raw_rcpt_to")
    return {
        "subject": text_field(data, "subject"),
        "from_address": _sender(data)[0],
        "to": [recipient] if recipient else [],
        "route": None,
        "is_spam": None,
        "spam_score": None,
    }


DETAILS: dict[str, Callable[[dict[str, Any], str], Details]] = {
    "message.created": _created,
    "message.delivered": _smtp_result,
    "message.deferred": _classified,
    "message.soft_bounced": _classified,
    "message.hard_bounced": _classified,
    "message.failed": _failed,
    "message.spam_complaint": lambda data, kind: {"feedback_type": text_field(data, "fbtype")},
    "message.policy_rejected": _policy_rejected,
    "message.opened": _opened,
    "message.clicked": _clicked,
    "message.inbound": _inbound,
}

# --- example(): one element, in SparkPost's sample-event shape -----------------------------------

_USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "message.created": ("message_event", "injection", {"msg_size": "1337"}),
    "message.delivered": ("message_event", "delivery", {"num_retries": "0", "queue_time": "412"}),
    "message.deferred": (
        "message_event",
        "delay",
        {"bounce_class": "22", "error_code": "452", "raw_reason": "452 4.2.2 Mailbox full", "reason": "Mailbox full"},
    ),
    "message.soft_bounced": (
        "message_event",
        "bounce",
        {"bounce_class": "22", "error_code": "452", "raw_reason": "452 4.2.2 Mailbox full", "reason": "Mailbox full"},
    ),
    "message.hard_bounced": (
        "message_event",
        "bounce",
        {"bounce_class": "10", "error_code": "550", "raw_reason": "550 5.1.1 User unknown", "reason": "User unknown"},
    ),
    "message.spam_complaint": ("message_event", "spam_complaint", {"fbtype": "abuse", "report_by": "example.com"}),
    "message.failed": (
        "gen_event",
        "generation_failure",
        {"error_code": "554", "raw_reason": "554 5.3.3 [internal] Error while rendering part html"},
    ),
    "message.policy_rejected": (
        "message_event",
        "policy_rejection",
        {"bounce_class": "25", "error_code": "554", "reason": "554 5.7.1 recipient address suppressed"},
    ),
    "message.opened": ("track_event", "initial_open", {"user_agent": _USER_AGENT, "ip_address": "203.0.113.7"}),
    "message.clicked": (
        "track_event",
        "click",
        {"user_agent": _USER_AGENT, "ip_address": "203.0.113.7", "target_link_url": "https://example.com/welcome"},
    ),
    "message.unsubscribed": ("unsubscribe_event", "link_unsubscribe", {"user_agent": _USER_AGENT}),
    "message.inbound": ("relay_event", "relay_delivery", {"rcpt_to": "support@inbound.example.com"}),
}


def _example_common(kind: str, now: datetime) -> dict[str, Any]:
    common: dict[str, Any] = {
        "event_id": str(uuid.uuid4().int)[:17],
        "timestamp": str(int(now.timestamp())),
        "rcpt_to": "user@example.com",
        "friendly_from": "bridge send-test <sender@example.com>",
        "msg_from": "bounces@example.com",
        "subject": "Hello from bridge send-test",
    }
    if kind.startswith("relay_"):  # inbound: no outbound message, transmission or tags
        return common
    return {
        **common,
        "message_id": uuid.uuid4().hex[:20],
        "transmission_id": str(uuid.uuid4().int)[:17],
        "rcpt_meta": {"sent_by": "bridge send-test"},
        "rcpt_tags": ["send-test"],
    }
