"""Postmark: no signature; HTTP Basic auth and/or a secret header, one JSON record per delivery
(docs/providers.md#postmark-postmark)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from pydantic import Field, model_validator

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import BasicCredential, basic_header, decode_basic, same, single_header
from bridge.providers.base import ProviderSpec
from bridge.providers.fields import (
    Details,
    derived_id,
    no_details,
    object_field,
    parse_json_object,
    parse_timestamp,
    smtp_fields,
    string_field,
    stringify_map,
)
from bridge.settings import ConfigModel, SourceSettings

NAME = "postmark"
AUTHORIZATION_HEADER = "authorization"
# RFC 9110 §5.1: a header name is a token.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
SIGN_BASIC_PREFIX = "basic:"
SIGN_HEADER_PREFIX = "header:"
SIGN_FORMS = "pass '<username>:<password>' and/or 'header:<Header-Name>:<value>', one per line"
# A reply as Postmark quotes it in `Details`: "smtp;550 5.1.1 The email account …", "250 OK".
SMTP_REPLY = re.compile(r"\s*(?:smtp;\s*)?([2-5][0-9]{2})(?:[ -]+([2-5]\.[0-9]{1,3}\.[0-9]{1,3}))?(?![0-9.])")

Payload = dict[str, Any]


class PostmarkOptions(ConfigModel):
    basic_auth: list[BasicCredential] = Field(
        [], description="Credentials embedded in the webhook URL; several while rotating, any one is accepted."
    )
    header: str | None = Field(
        None, description="A custom header set in the webhook's HttpHeaders; its accepted values are `secrets`."
    )


class PostmarkSource(SourceSettings):
    """Postmark signs nothing. A source configures one or both of:
    - `options.basic_auth`: `[{username, password}, ...]`, the credentials embedded in the webhook
      URL (`https://user:pass@host/webhooks/<source>`), which arrive as `Authorization: Basic …`.
      Several entries for rotation; any one matching is accepted.
    - `options.header`: the name of a custom header set in the webhook's `HttpHeaders`; its accepted
      values are the source's `secrets` (several for rotation).
    If both are configured, both must pass.
    """

    provider: Literal["postmark"]
    options: PostmarkOptions = Field(default_factory=PostmarkOptions)

    @model_validator(mode="after")
    def _check(self) -> PostmarkSource:
        if "tolerance_seconds" in self.model_fields_set:
            raise ValueError("tolerance_seconds: Postmark sends no timestamp to check; remove the key")
        if not self.options.basic_auth and self.options.header is None:
            raise ValueError("options: Postmark does not sign; configure basic_auth, header, or both")
        self._check_header()
        return self

    def _check_header(self) -> None:
        header = self.options.header
        if header is None:
            if self.secrets:
                raise ValueError("secrets: only used as the accepted values of options.header, which is not set")
            return
        if not HEADER_NAME.fullmatch(header):
            raise ValueError(f"options.header: {header!r} is not an HTTP header name")
        if self.options.basic_auth and header.lower() == AUTHORIZATION_HEADER:
            raise ValueError("options.header: Authorization already carries basic_auth; name another header")
        if not self.secrets:
            raise ValueError("secrets: options.header needs at least one secret (the values it accepts)")
        for index, secret in enumerate(self.secret_values()):
            # HTTP strips a value's surrounding whitespace, so such a secret could never match.
            if secret != secret.strip(" \t") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
                raise ValueError(
                    f"secrets.{index}: a header value cannot start or end with whitespace or hold controls"
                )

    def private_headers(self) -> frozenset[str]:
        """The secret header carries a credential, like Authorization: it stays out of dead letters."""
        header = self.options.header
        return super().private_headers() | ({header.lower()} if header else set())


class Postmark:
    """Every comparison is of SHA-256 digests (`auth.same`), over every configured credential,
    username and password alike, so neither the content nor the length of a secret shows in the timing.

    Replay. There is no timestamp and no signature over the body: a captured request can be replayed
    and a body altered in transit would not be noticed. The protection is TLS (the webhook URL must be
    https) and the secrecy of the credentials; consumers deduplicate on `event_id`.
    """

    def verify(self, headers: Headers, body: bytes, source: PostmarkSource, now: float) -> None:
        options = source.options
        if options.basic_auth and not _basic_auth_matches(headers, options.basic_auth):
            raise SignatureInvalid(
                "basic auth: credentials do not match a configured username and password", "bad_credentials"
            )
        if options.header is not None:
            _verify_header(headers, options.header, source.secret_values())

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        payload = parse_json_object(delivery.body)
        record_type = payload.get("RecordType")
        if not isinstance(record_type, str) or not record_type:
            raise PayloadInvalid("RecordType: missing or not a string")
        event_type, provider_event = _classify(record_type, payload)
        stated = _stated_time(record_type, payload)
        message_id = string_field(payload, "MessageID") or string_field(payload, "MessageId")
        recipient = string_field(payload, "Recipient") or string_field(payload, "Email")
        event_id = _event_id(record_type, payload, (message_id, recipient, stated), delivery.body)
        tag = string_field(payload, "Tag")
        return [
            CanonicalEvent.of(
                delivery,
                event_id=event_id,
                event_type=event_type,
                provider_event=provider_event,
                key=_key(event_type, message_id, recipient) or event_id,
                occurred_at=stated or delivery.received_at,
                message_id=message_id,
                recipient=recipient,
                tags=(tag,) if tag else (),
                metadata=stringify_map(payload.get("Metadata")),
                details=DETAILS.get(event_type, no_details)(payload),
            )
        ]


class PostmarkSender:
    """`bridge send-test`: an example record with the source's credentials, as Postmark would send it:
    its first basic_auth entry, and its secret header with the first secret."""

    def example(self, event_type: str, now: datetime) -> bytes:
        build = _EXAMPLES.get(event_type)
        if build is None:
            raise ValueError(f"Postmark sends no {event_type}; examples: {', '.join(sorted(_EXAMPLES))}")
        payload = {**build(_postmark_time(now)), "MessageStream": "outbound", "ServerID": 23}
        return _json(payload)

    def sign(self, body: bytes, source: PostmarkSource, now: float) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json"}
        for credential in source.options.basic_auth[:1]:
            headers["Authorization"] = basic_header(credential.username, credential.password.get_secret_value())
        if source.options.header is not None:
            headers[source.options.header] = source.secret_values()[0]
        return body, headers


def credential_headers(credentials: str) -> dict[str, str]:
    """The headers for arbitrary credentials, one per line (tests send wrong and rotated ones):
    `<username>:<password>` (or `basic:<username>:<password>`) gives `Authorization: Basic …`;
    `header:<Header-Name>:<value>` gives that header."""
    lines = credentials.splitlines()
    if not lines:
        raise ValueError(f"cannot sign without a credential; {SIGN_FORMS}")
    headers = {"Content-Type": "application/json"}
    for line in lines:
        name, value = _credential_header(line)
        headers[name] = value
    return headers


# --- verification --------------------------------------------------------------------------------


def _same_either_form(got: bytes, want: bytes) -> bool:
    """As sent, or percent-decoded: whether Postmark decodes a URL's `user:p%40ss` before encoding
    it into the header is unconfirmed (see docs/providers.md), so both forms of the configured
    (decoded) value match."""
    return same(got, want) | same(unquote_to_bytes(got), want)


def _basic_auth_matches(headers: Headers, credentials: list[BasicCredential]) -> bool:
    user, password = decode_basic(single_header(headers, AUTHORIZATION_HEADER))
    matched = False
    for credential in credentials:  # no early exit: every credential costs the same
        same_user = _same_either_form(user, credential.username.encode())
        same_password = _same_either_form(password, credential.password.get_secret_value().encode())
        matched |= same_user & same_password
    return matched


def _verify_header(headers: Headers, name: str, secrets: list[str]) -> None:
    # The header's name is configuration an attacker need not learn: it stays out of the messages
    # (so not single_header, which names it).
    values = headers.getlist(name)
    if len(values) != 1:
        raise SignatureInvalid(
            f"secret header: expected one, got {len(values)}", "malformed_header" if values else "missing_header"
        )
    got = values[0].strip(" \t").encode("latin-1")  # the bytes as sent; Headers decodes them as latin-1
    matched = False
    for secret in secrets:  # no early exit, as for basic auth
        matched |= same(got, secret.encode())
    if not matched:
        raise SignatureInvalid("secret header: the value does not match a configured secret", "bad_credentials")


def _credential_header(line: str) -> tuple[str, str]:
    if line.startswith(SIGN_HEADER_PREFIX):
        name, colon, value = line.removeprefix(SIGN_HEADER_PREFIX).partition(":")
        if not colon or not HEADER_NAME.fullmatch(name):
            raise ValueError("a header credential is 'header:<Header-Name>:<value>'")
        return name, value
    username, colon, password = line.removeprefix(SIGN_BASIC_PREFIX).partition(":")
    if not colon:
        raise ValueError(f"cannot sign with a bare value: a secret header's name is not in it; {SIGN_FORMS}")
    return "Authorization", basic_header(username, password)


# --- payload mapping -----------------------------------------------------------------------------

RECORD_TYPES = {
    "Delivery": "message.delivered",
    "SpamComplaint": "message.spam_complaint",
    "Open": "message.opened",
    "Click": "message.clicked",
}

# Postmark's bounce types (postmarkapp.com/developer/api/bounce-api#bounce-types), by meaning.
# hard_bounced: the address itself cannot receive. soft_bounced: this delivery failed, the address
# may still be good (temporary trouble, or the receiver refused this content/sender, as SES and
# SparkPost class content blocks). Postmark's own `Type` is kept as `bounce_class`.
BOUNCE_TYPES = {
    "HardBounce": "message.hard_bounced",  # 1: unknown user, mailbox not found
    "BadEmailAddress": "message.hard_bounced",  # 100000: not a valid address
    "ManuallyDeactivated": "message.hard_bounced",  # 100002: address deactivated by hand
    "Unconfirmed": "message.hard_bounced",  # 100003: registration never confirmed
    "Transient": "message.soft_bounced",  # 2: message delayed (network trouble)
    "DnsError": "message.soft_bounced",  # 256: temporary DNS error
    "SoftBounce": "message.soft_bounced",  # 4096: mailbox full, account disabled, over quota
    "SpamNotification": "message.soft_bounced",  # 512: refused by the receiver's spam filter
    "VirusNotification": "message.soft_bounced",  # 8192: refused as virus-infected
    "ChallengeVerification": "message.soft_bounced",  # 16384: held until the sender answers a challenge
    "Blocked": "message.soft_bounced",  # 100006: ISP block (content, blacklisting)
    "DMARCPolicy": "message.soft_bounced",  # 100009: rejected by the sender domain's DMARC policy
    "Unknown": "message.soft_bounced",  # 2048: Postmark could not classify the bounce
    "SpamComplaint": "message.spam_complaint",  # 100001: marked as spam
    "Unsubscribe": "message.unsubscribed",  # 16: an unsubscribe/remove request came back
    "AutoResponder": "message.auto_replied",  # 64: out-of-office and similar automatic replies
    "AddressChange": "message.auto_replied",  # 128: an automatic "my address changed" notice
    "SMTPApiError": "message.failed",  # 100007: Postmark's SMTP API could not accept the message
    "TemplateRenderingFailed": "message.failed",  # 100010: the template did not render
    # Unmapped (published raw): Subscribe (32), OpenRelayTest (1024), InboundError (100008).
}

# SubscriptionChange with SuppressSending true: who and why, when it is not the recipient's
# own unsubscribe (ManualSuppression with Origin Recipient).
NOT_UNSUBSCRIBES = frozenset({"HardBounce", "SpamComplaint"})
NOT_RECIPIENT_ORIGINS = frozenset({"Customer", "Admin"})

# When each record type says it happened.
TIME_FIELDS = {
    "Delivery": "DeliveredAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "SubscriptionChange": "ChangedAt",
}
BOUNCE_RECORDS = frozenset({"Bounce", "SpamComplaint"})
SUPPRESSION_TYPES = frozenset({"suppression.added", "suppression.removed"})


def _classify(record_type: str, payload: Payload) -> tuple[str, str]:
    """(canonical type, provider_event). Bounces name their Type: `Bounce/HardBounce`."""
    if record_type == "Bounce":
        bounce_type = string_field(payload, "Type") or ""
        return BOUNCE_TYPES.get(bounce_type, UNMAPPED), f"Bounce/{bounce_type}" if bounce_type else "Bounce"
    if record_type == "SubscriptionChange":
        return _subscription_change(payload), record_type
    return RECORD_TYPES.get(record_type, UNMAPPED), record_type


def _subscription_change(payload: Payload) -> str:
    """A change to the stream's suppression list: a reactivation, a recipient's unsubscribe, or a
    suppression for another reason (hard bounce, complaint, the sender's own manual suppression)."""
    suppress = _flag(payload, "SuppressSending")
    if suppress is None:
        raise PayloadInvalid("SuppressSending: expected true or false")
    if not suppress:
        return "suppression.removed"
    reason, origin = string_field(payload, "SuppressionReason"), string_field(payload, "Origin")
    if reason in NOT_UNSUBSCRIBES or origin in NOT_RECIPIENT_ORIGINS:
        return "suppression.added"
    return "message.unsubscribed"


def _stated_time(record_type: str, payload: Payload) -> datetime | None:
    """The record's own time; a record type we do not know may carry any of the known fields."""
    field = TIME_FIELDS.get(record_type)
    if field is None:
        present = [name for name in dict.fromkeys(TIME_FIELDS.values()) if payload.get(name) is not None]
        if not present:
            return None
        field = present[0]
    stated = parse_timestamp(payload.get(field), field)
    try:
        stated.astimezone(UTC)  # the event id names the time in UTC
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise PayloadInvalid(f"{field}: {stated.isoformat()} has no time in UTC, it is out of range") from None
    return stated


def _event_id(
    record_type: str, payload: Payload, about: tuple[str | None, str | None, datetime | None], body: bytes
) -> str:
    """Postmark has no event id. Bounces and complaints have their bounce `ID`; anything else is
    `<RecordType>:<MessageID>:<recipient>:<time, UTC>`, the same for every retry of a record."""
    bounce_id = payload.get("ID")
    if record_type in BOUNCE_RECORDS and _is_id(bounce_id):
        return f"{record_type}:{bounce_id}"
    message_id, recipient, stated = about
    if stated is None:  # nothing stable to build on but the bytes
        return derived_id(body)
    return f"{record_type}:{message_id or ''}:{recipient or ''}:{stated.astimezone(UTC).isoformat()}"


def _key(event_type: str, message_id: str | None, recipient: str | None) -> str | None:
    # Suppression records are about an address, and keyed by it (schemas/suppression.*.avsc).
    if event_type in SUPPRESSION_TYPES:
        return recipient
    return message_id or recipient


def _is_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def _flag(payload: Payload, name: str) -> bool | None:
    value = payload.get(name)
    if isinstance(value, str):  # unconfirmed: accept "true"/"false" as well as JSON booleans
        return {"true": True, "false": False}.get(value.strip().lower())
    return value if isinstance(value, bool) else None


def _smtp(payload: Payload) -> Details:
    """`Details` whole as the SMTP response, and its codes where it starts with a reply."""
    return smtp_fields(string_field(payload, "Details"), SMTP_REPLY)


def _delivered(payload: Payload) -> Details:
    return {"reason": None, **_smtp(payload), "session_id": None}


def _bounced(payload: Payload) -> Details:
    return {
        "reason": string_field(payload, "Description"),
        **_smtp(payload),
        "bounce_class": string_field(payload, "Type"),
    }


def _failed(payload: Payload) -> Details:
    return {
        "reason": string_field(payload, "Description"),
        **_smtp(payload),
        "error_code": string_field(payload, "Type"),
    }


def _opened(payload: Payload) -> Details:
    return {
        "subject": string_field(payload, "Subject"),
        "first": _flag(payload, "FirstOpen"),
        "user_agent": string_field(payload, "UserAgent"),
        "client_name": string_field(object_field(payload, "Client"), "Name"),
        "client_type": string_field(payload, "Platform"),  # WebMail, Desktop, Mobile, Unknown
        "device_type": None,
        "is_bot": None,
        "ip": string_field(object_field(payload, "Geo"), "IP"),
    }


def _clicked(payload: Payload) -> Details:
    return {**_opened(payload), "url": string_field(payload, "OriginalLink"), "link_index": None}


def _suppression(payload: Payload) -> Details:
    return {
        "suppression_type": "email",
        "value": string_field(payload, "Recipient"),
        "reason": string_field(payload, "SuppressionReason"),
    }


DETAILS: dict[str, Callable[[Payload], Details]] = {
    "message.delivered": _delivered,
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.failed": _failed,
    "message.opened": _opened,
    "message.clicked": _clicked,
    "suppression.added": _suppression,
    "suppression.removed": _suppression,
}


# --- examples ------------------------------------------------------------------------------------


def _postmark_time(now: datetime) -> str:
    """Postmark's form: UTC, seven fractional digits, `Z` ("2019-11-05T16:33:54.9070259Z")."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _json(payload: Payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _message(**fields: Any) -> Payload:
    return {
        "MessageID": str(uuid.uuid4()),
        "Tag": "send-test",
        "Metadata": {"sent_by": "bridge send-test"},
        **fields,
    }


def _bounce(bounce_type: str, type_code: int, details: str, record_type: str = "Bounce") -> Callable[[str], Payload]:
    def build(when: str) -> Payload:
        return _message(
            RecordType=record_type,
            ID=uuid.uuid4().int >> 66,  # Postmark's bounce ids are 64-bit integers
            Type=bounce_type,
            TypeCode=type_code,
            Details=details,
            Email="user@example.com",
            From="sender@example.com",
            BouncedAt=when,
            Subject="Hello from bridge send-test",
        )

    return build


def _tracking(record_type: str, **fields: Any) -> Callable[[str], Payload]:
    def build(when: str) -> Payload:
        return _message(
            RecordType=record_type,
            Recipient="user@example.com",
            ReceivedAt=when,
            Platform="Desktop",
            UserAgent="Mozilla/5.0 (bridge send-test)",
            Client={"Name": "Chrome 120.0", "Company": "Google", "Family": "Chrome"},
            OS={"Name": "macOS 14", "Company": "Apple", "Family": "macOS"},
            Geo={"CountryISOCode": "NL", "Country": "Netherlands", "IP": "192.0.2.1"},
            **fields,
        )

    return build


def _change(suppress: bool, reason: str) -> Callable[[str], Payload]:
    def build(when: str) -> Payload:
        return _message(
            RecordType="SubscriptionChange",
            Recipient="user@example.com",
            ChangedAt=when,
            Origin="Recipient",
            SuppressSending=suppress,
            SuppressionReason=reason,
        )

    return build


_EXAMPLES: dict[str, Callable[[str], Payload]] = {
    "message.delivered": lambda when: _message(
        RecordType="Delivery", Recipient="user@example.com", DeliveredAt=when, Details="smtp;250 2.0.0 OK"
    ),
    "message.hard_bounced": _bounce("HardBounce", 1, "smtp;550 5.1.1 The email account does not exist."),
    "message.soft_bounced": _bounce("SoftBounce", 4096, "smtp;452 4.2.2 The email account is over quota."),
    "message.spam_complaint": _bounce("SpamComplaint", 100001, "", record_type="SpamComplaint"),
    "message.auto_replied": _bounce("AutoResponder", 64, "Out of office until Monday."),
    "message.failed": _bounce("TemplateRenderingFailed", 100010, "The template did not render."),
    "message.opened": _tracking("Open", FirstOpen=True, ReadSeconds=5),
    "message.clicked": _tracking("Click", ClickLocation="HTML", OriginalLink="https://example.com/welcome"),
    "message.unsubscribed": _change(True, "ManualSuppression"),
    "suppression.added": _change(True, "HardBounce"),
    "suppression.removed": _change(False, "HardBounce"),
}

# The canonical types `PostmarkSender.example` can build: what Postmark sends that has a canonical name.
EXAMPLE_TYPES = tuple(_EXAMPLES)


SPEC = ProviderSpec(name=NAME, source=PostmarkSource, build=lambda io: Postmark(), sender=PostmarkSender)
