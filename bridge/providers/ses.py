"""Amazon SES via SNS: RSA-signed SNS envelopes around SES event JSON, one event per recipient (spec §4.5).

SNS puts the signature in the body, so the body is parsed before it is authenticated; anything that
does not parse, or lacks a signed field, is a SignatureInvalid. The signing certificate comes from
`SigningCertURL` (HTTPS, SNS hosts only), pinned in `options.certificates` or fetched through an
injected getter and cached by URL. There is no timestamp window: SNS's `Timestamp` is the publish
time, the same on every retry; consumers dedupe on `event_id`, which derives from SNS's MessageId.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers

from bridge.errors import PayloadInvalid, SignatureInvalid, Unavailable
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.providers.base import (
    Details,
    as_list,
    no_details,
    object_field,
    parse_options,
    parse_timestamp,
    smtp_fields,
    string_field,
)
from bridge.settings import SourceSettings

log = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
# The string-to-sign: `Key\nValue\n` for these keys, in this order (Subject only where present).
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_KEYS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_KEYS,
}
OPTIONAL_SIGNED_KEYS = frozenset({"Subject"})
SIGNATURE_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MESSAGE_TYPE_HEADER = "x-amz-sns-message-type"
TOPIC_ARN_HEADER = "x-amz-sns-topic-arn"
# sns-validator's default hostPattern; the AWS PHP validator also wants the certificate path to end in .pem.
SNS_HOST = re.compile(r"^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$")
PEM_SUFFIX = ".pem"
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
SUBSCRIPTION_ARN = re.compile(r"<SubscriptionArn>([^<]{1,1024})</SubscriptionArn>")

FETCH_TIMEOUT_SECONDS = 5.0
FETCH_MAX_BYTES = 64 * 1024
CERTIFICATE_CACHE_SIZE = 32
# Certificate URLs name one certificate each (AWS rotates by publishing a new URL), so a long TTL is safe.
CERTIFICATE_TTL_SECONDS = 6 * 3600

# For `bridge send-test`: the URL under which the test certificate is pinned, and the example topic.
SEND_TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bridge-send-test.pem"
EXAMPLE_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-events"

HttpGet = Callable[[str], Awaitable[bytes]]


class FetchError(Exception):
    """A GET that did not answer 2xx; `status` is None where nothing answered (timeout, refused)."""

    def __init__(self, url: str, status: int | None, detail: str) -> None:
        super().__init__(f"GET {url}: {detail}")
        self.status = status


def http_getter(transport: httpx.AsyncBaseTransport | None = None) -> HttpGet:
    """The default getter: one short-timeout GET, no redirects, at most FETCH_MAX_BYTES (tests pass a transport)."""

    async def get(url: str) -> bytes:
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False, transport=transport) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    raise FetchError(url, response.status_code, f"HTTP {response.status_code}")
                return await _read_limited(url, response)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise FetchError(url, None, str(error) or type(error).__name__) from error

    return get


async def _read_limited(url: str, response: httpx.Response) -> bytes:
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > FETCH_MAX_BYTES:
            raise FetchError(url, response.status_code, f"answer longer than {FETCH_MAX_BYTES} bytes")
    return bytes(content)


class SesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Required: an SNS endpoint that accepts any topic accepts anyone's AWS account.
    topic_arns: list[str]
    # SigningCertURL -> PEM certificate, trusted without fetching (egress-restricted clusters, tests).
    certificates: dict[str, str] = {}
    # GET the SubscribeURL of a verified SubscriptionConfirmation; otherwise log it for an operator.
    confirm_subscriptions: bool = False


@dataclass(frozen=True)
class SesConfig:
    """What `check` makes of a source's options: the allow-list and the pinned keys, parsed once."""

    topic_arns: frozenset[str]
    pinned: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    confirm_subscriptions: bool = False


class CertificateCache:
    """Public keys by certificate URL, least recently used evicted first, each kept `ttl` seconds."""

    def __init__(self, size: int = CERTIFICATE_CACHE_SIZE, ttl: float = CERTIFICATE_TTL_SECONDS) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[float, rsa.RSAPublicKey]] = OrderedDict()

    def get(self, url: str, now: float) -> rsa.RSAPublicKey | None:
        entry = self._entries.get(url)
        if entry is None or entry[0] <= now:
            self._entries.pop(url, None)
            return None
        self._entries.move_to_end(url)
        return entry[1]

    def put(self, url: str, key: rsa.RSAPublicKey, now: float) -> None:
        self._entries[url] = (now + self._ttl, key)
        self._entries.move_to_end(url)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class Ses:
    name = "ses"

    def __init__(
        self,
        fetch_certificate: HttpGet | None = None,
        get_url: HttpGet | None = None,
        cache: CertificateCache | None = None,
    ) -> None:
        self._fetch_certificate = fetch_certificate or http_getter()
        self._get_url = get_url or http_getter()
        self._cache = cache or CertificateCache()

    def check(self, source: SourceSettings) -> SesConfig:
        options = parse_options(SesOptions, source)
        if not options.topic_arns:
            raise ValueError("options.topic_arns: list at least one TopicArn; an empty allow-list accepts any topic")
        for arn in options.topic_arns:
            if not TOPIC_ARN.fullmatch(arn):
                raise ValueError(f"options.topic_arns: not an SNS topic ARN: {arn!r}")
        for secret in source.secret_values():
            _private_key(secret)  # secrets only sign `bridge send-test` deliveries
        return SesConfig(
            topic_arns=frozenset(options.topic_arns),
            pinned={url: _pinned_key(url, pem) for url, pem in options.certificates.items()},
            confirm_subscriptions=options.confirm_subscriptions,
        )

    async def verify(self, headers: Headers, body: bytes, source: SourceSettings, now: float) -> None:
        config = self._config(source)
        envelope = _envelope(body, SignatureInvalid)
        kind = _message_type(envelope, headers)
        signed = _string_to_sign(envelope, kind)
        if envelope["TopicArn"] not in config.topic_arns:
            raise SignatureInvalid(f"TopicArn {envelope['TopicArn']!r} is not in options.topic_arns")
        version = envelope.get("SignatureVersion")
        algorithm = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
        if algorithm is None:
            raise SignatureInvalid(f'SignatureVersion {version!r} is not "1" or "2"')
        signature = _base64(envelope.get("Signature"))
        url = _sns_url(envelope.get("SigningCertURL"), "SigningCertURL", PEM_SUFFIX)
        if kind != NOTIFICATION:
            _sns_url(envelope.get("SubscribeURL"), "SubscribeURL")
        key = await self._public_key(url, config, now)
        try:
            key.verify(signature, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SignatureInvalid("the SNS signature does not match the signing certificate") from None

    async def handshake(self, delivery: Delivery, source: SourceSettings) -> dict[str, Any] | None:
        """SubscriptionConfirmation: confirm or surface the SubscribeURL; UnsubscribeConfirmation: say so."""
        envelope = _envelope(delivery.body, PayloadInvalid)
        kind, topic = envelope.get("Type"), str(envelope.get("TopicArn"))
        if kind == UNSUBSCRIBE_CONFIRMATION:
            log.warning(
                "source=%s: SNS unsubscribed this endpoint from %s; no more events will arrive", source.name, topic
            )
            return {"status": "unsubscribed", "topic_arn": topic}
        if kind != SUBSCRIPTION_CONFIRMATION:
            return None
        url = _sns_url(envelope.get("SubscribeURL"), "SubscribeURL")
        if not self._config(source).confirm_subscriptions:
            log.warning(
                "source=%s: SNS subscription to %s awaits confirmation: GET %s (or set options.confirm_subscriptions)",
                source.name, topic, url,
            )  # fmt: skip
            return {"status": "subscription-pending", "topic_arn": topic, "subscribe_url": url}
        return {"status": "subscription-confirmed", "topic_arn": topic, **await self._confirm(url, source)}

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        envelope = _envelope(delivery.body, PayloadInvalid)
        text, sns_id = envelope.get("Message"), envelope.get("MessageId")
        if not isinstance(text, str) or not isinstance(sns_id, str) or not sns_id:
            raise PayloadInvalid("Message and MessageId must be strings")
        ses = _ses_message(text)
        name = _event_name(ses)
        mail, body = object_field(ses, "mail"), object_field(ses, EVENT_OBJECTS.get(name, ""))
        event_type, message_id = _event_type(name, body), string_field(mail, "messageId")
        details = DETAILS.get(event_type, no_details)
        common: dict[str, Any] = {
            "event_type": event_type,
            "provider": self.name,
            "source": delivery.source,
            "provider_event": name,
            "occurred_at": _occurred_at(body, mail, envelope),
            "received_at": delivery.received_at,
            "raw": text,  # the SES JSON, unchanged, shared by the events of one notification
            "message_id": message_id,
            "tags": _tags(mail.get("tags")),
        }
        return [
            CanonicalEvent(
                event_id=_event_id(sns_id, name, recipient),
                key=message_id or _event_id(sns_id, name, recipient),
                recipient=recipient,
                details=details(body, entry, mail),
                **common,
            )
            for recipient, entry in _recipients(name, body, mail)
        ]

    def sign(self, body: bytes, secret: str, now: float) -> dict[str, str]:
        """The HTTP headers SNS sends with a signed envelope; the signature itself is in the body."""
        envelope = _envelope(body, ValueError)
        if "Signature" not in envelope:
            raise NotImplementedError(
                "SNS signs inside the body, not in a header: sign the example with Ses.sign_body(body, secret, now) "
                "first (secret: a PEM RSA private key whose certificate is pinned under SigningCertURL)"
            )
        return {
            "x-amz-sns-message-type": str(envelope.get("Type")),
            "x-amz-sns-message-id": str(envelope.get("MessageId")),
            "x-amz-sns-topic-arn": str(envelope.get("TopicArn")),
            "Content-Type": "text/plain; charset=UTF-8",
        }

    def sign_body(self, body: bytes, secret: str, now: float, version: str = "2") -> bytes:
        """`body` signed as SNS would, with `secret` a PEM RSA private key (SignatureVersion 1 or 2).

        SigningCertURL is kept where the envelope has one, else SEND_TEST_CERT_URL: pin the key's
        certificate under that URL in `options.certificates`.
        """
        envelope = _envelope(body, ValueError)
        envelope.pop("Signature", None)
        envelope["SignatureVersion"] = version
        envelope.setdefault("SigningCertURL", SEND_TEST_CERT_URL)
        signed = _string_to_sign(envelope, str(envelope.get("Type")))
        signature = _private_key(secret).sign(signed, padding.PKCS1v15(), SIGNATURE_HASHES[version]())
        envelope["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(envelope, ensure_ascii=False, indent=2).encode()

    def example(self, event_type: str, now: datetime) -> bytes:
        """An SNS Notification around an SES event-publishing record of `event_type`, unsigned."""
        if event_type not in EXAMPLE_EVENTS:
            raise ValueError(f"SES sends no {event_type}; examples exist for {', '.join(sorted(EXAMPLE_EVENTS))}")
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = _example_message(event_type, stamp)
        envelope = {
            "Type": NOTIFICATION,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": EXAMPLE_TOPIC_ARN,
            "Subject": "Amazon SES Email Event Notification",
            "Message": json.dumps(message, separators=(",", ":")),
            "Timestamp": stamp,
            "SignatureVersion": "2",
            "SigningCertURL": SEND_TEST_CERT_URL,
            "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={EXAMPLE_TOPIC_ARN}:send-test",
        }
        return json.dumps(envelope, ensure_ascii=False, indent=2).encode()

    def _config(self, source: SourceSettings) -> SesConfig:
        parsed = source.parsed_options
        return parsed if isinstance(parsed, SesConfig) else self.check(source)

    async def _public_key(self, url: str, config: SesConfig, now: float) -> rsa.RSAPublicKey:
        pinned = config.pinned.get(url)
        if pinned is not None:
            return pinned
        cached = self._cache.get(url, now)
        if cached is not None:
            return cached
        try:
            pem = await self._fetch_certificate(url)
        except FetchError as error:
            # A 4xx from an SNS host means there is no such certificate; anything else may pass.
            if error.status is not None and 400 <= error.status < 500:
                raise SignatureInvalid(f"signing certificate: {error}") from None
            raise Unavailable(f"signing certificate: {error}") from None
        key = _certificate_key(pem)
        self._cache.put(url, key, now)
        return key

    async def _confirm(self, url: str, source: SourceSettings) -> dict[str, str]:
        try:
            answer = await self._get_url(url)
        except FetchError as error:
            log.warning("source=%s: confirming the SNS subscription failed (%s); SNS will retry", source.name, error)
            raise Unavailable(f"SubscribeURL: {error}") from None
        found = SUBSCRIPTION_ARN.search(answer.decode("utf-8", "replace"))
        return {"subscription_arn": found.group(1)} if found else {}


# --- The SNS envelope and its signature -----------------------------------------------------------


def _envelope(body: bytes, error: type[Exception]) -> dict[str, Any]:
    """The SNS JSON document; `error` is SignatureInvalid before verification, PayloadInvalid after."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"body is not an SNS JSON document: {problem}") from None
    if not isinstance(value, dict):
        raise error(f"body is JSON {type(value).__name__}, expected an SNS message object")
    return value


def _message_type(envelope: dict[str, Any], headers: Headers) -> str:
    kind = envelope.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_KEYS:
        raise SignatureInvalid(f"Type {kind!r} is not an SNS HTTP message type")
    # The headers are not signed, but a mismatch with the signed body means someone edited one of them.
    for header, key in ((MESSAGE_TYPE_HEADER, "Type"), (TOPIC_ARN_HEADER, "TopicArn")):
        if header in headers and headers[header] != envelope.get(key):
            raise SignatureInvalid(f"header {header} does not match the body's {key}")
    return kind


def _string_to_sign(envelope: dict[str, Any], kind: str) -> bytes:
    parts = []
    for key in SIGNED_KEYS.get(kind, ()):
        value = envelope.get(key)
        if value is None and key in OPTIONAL_SIGNED_KEYS:
            continue
        if not isinstance(value, str):
            raise SignatureInvalid(f"signed field {key} is missing or not a string")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _base64(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SignatureInvalid("Signature is missing")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise SignatureInvalid("Signature is not base64") from None


def _sns_url(value: object, field_name: str, suffix: str = "") -> str:
    """An https:// URL on an SNS host, no credentials or odd port: checked before anything is fetched."""
    if not isinstance(value, str):
        raise SignatureInvalid(f"{field_name} is missing")
    # urlsplit silently drops tabs and newlines, so what it checked would not be what is fetched.
    if not value.isascii() or not value.isprintable() or " " in value:
        raise SignatureInvalid(f"{field_name} has spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise SignatureInvalid(f"{field_name} is not a URL") from None
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or port not in (None, 443):
        raise SignatureInvalid(f"{field_name} must be a plain https:// URL: {value!r}")
    if not SNS_HOST.fullmatch(parts.hostname or "") or not parts.path.endswith(suffix):
        raise SignatureInvalid(f"{field_name} is not on an SNS host: {value!r}")
    return value


def _certificate_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise SignatureInvalid("the signing certificate is not a PEM X.509 certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid("the signing certificate does not hold an RSA key")
    return key


def _pinned_key(url: str, pem: str) -> rsa.RSAPublicKey:
    try:
        _sns_url(url, "URL", PEM_SUFFIX)
        return _certificate_key(pem.encode())
    except SignatureInvalid as error:
        raise ValueError(f"options.certificates.{url}: {error}") from None


def _private_key(secret: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(secret.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("secrets: the ses provider takes PEM RSA private keys (for bridge send-test)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("secrets: the ses provider takes PEM RSA private keys (for bridge send-test)")
    return key


# --- The SES message inside ------------------------------------------------------------------------

BOUNCE, COMPLAINT, DELIVERY, DELIVERY_DELAY = "Bounce", "Complaint", "Delivery", "DeliveryDelay"
SUBSCRIPTION = "Subscription"
# Each event's own object; identity notifications (`notificationType`) use the same names.
EVENT_OBJECTS = {
    BOUNCE: "bounce",
    COMPLAINT: "complaint",
    DELIVERY: "delivery",
    "Send": "send",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "Rendering Failure": "failure",
    DELIVERY_DELAY: "deliveryDelay",
    SUBSCRIPTION: "subscription",
}
# Events about some of the message's recipients: one canonical event each.
RECIPIENT_LISTS = {
    BOUNCE: "bouncedRecipients",
    COMPLAINT: "complainedRecipients",
    DELIVERY: "recipients",
    DELIVERY_DELAY: "delayedRecipients",
}
SES_EVENT_TYPES = {
    "Send": "message.created",
    DELIVERY: "message.delivered",
    DELIVERY_DELAY: "message.deferred",
    COMPLAINT: "message.spam_complaint",
    "Reject": "message.failed",
    "Rendering Failure": "message.failed",
    "Open": "message.opened",
    "Click": "message.clicked",
}
# Undetermined: SES could not tell why. Soft, so nobody drops an address on a guess; bounce_class says which.
BOUNCE_TYPES = {
    "Permanent": "message.hard_bounced",
    "Transient": "message.soft_bounced",
    "Undetermined": "message.soft_bounced",
}
# "Not sent: the recipient is on a suppression list" is message.suppressed, whatever SES files it under.
SUPPRESSED_SUBTYPES = frozenset({"Suppressed", "OnAccountSuppressionList"})
OPT_OUT = "OptOut"
# `250 2.6.0 Message received` / `smtp; 550 5.1.1 user unknown`: code and enhanced code, where given.
SMTP_REPLY = re.compile(r"\s*(?:smtp;\s*)?([2-5][0-9]{2})(?:[ -]+([2-5]\.[0-9]{1,3}\.[0-9]{1,3}))?", re.IGNORECASE)


def _ses_message(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadInvalid(f"Message is not SES JSON: {error}") from None
    if not isinstance(value, dict):
        raise PayloadInvalid(f"Message is JSON {type(value).__name__}, expected an SES event object")
    return value


def _event_name(ses: dict[str, Any]) -> str:
    # Configuration-set event publishing says eventType; identity notifications say notificationType.
    name = ses.get("eventType", ses.get("notificationType"))
    if not isinstance(name, str) or not name:
        raise PayloadInvalid("Message has no eventType or notificationType")
    return name


def _event_type(name: str, body: dict[str, Any]) -> str:
    if name == BOUNCE:
        if body.get("bounceSubType") in SUPPRESSED_SUBTYPES:
            return "message.suppressed"
        return BOUNCE_TYPES.get(str(body.get("bounceType")), UNMAPPED)
    if name == COMPLAINT and body.get("complaintSubType") in SUPPRESSED_SUBTYPES:
        return "message.suppressed"
    if name == SUBSCRIPTION:
        return "message.unsubscribed" if _opted_out(body) else UNMAPPED
    return SES_EVENT_TYPES.get(name, UNMAPPED)


def _opted_out(body: dict[str, Any]) -> bool:
    """Unsubscribed from everything, or from a topic not opted out of before (else an opt-in: unmapped)."""
    new, old = object_field(body, "newTopicPreferences"), object_field(body, "oldTopicPreferences")
    if new.get("unsubscribeAll") is True:
        return True
    before = {
        item.get("topicName"): item.get("subscriptionStatus") for item in _objects(old.get("topicSubscriptionStatus"))
    }
    return any(
        item.get("subscriptionStatus") == OPT_OUT and before.get(item.get("topicName")) != OPT_OUT
        for item in _objects(new.get("topicSubscriptionStatus"))
    )


def _recipients(name: str, body: dict[str, Any], mail: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(recipient, its entry) per recipient the event names; one recipient-less entry where it names none.

    Message-level events (Send, Open, ...) name no recipient: the message's sole destination stands in.
    """
    if name not in RECIPIENT_LISTS:
        destination = [item for item in as_list(mail.get("destination")) if isinstance(item, str)]
        return [(destination[0] if len(destination) == 1 else None, {})]
    found: dict[str, dict[str, Any]] = {}
    for item in as_list(body.get(RECIPIENT_LISTS[name])):
        entry = item if isinstance(item, dict) else {"emailAddress": item}
        address = string_field(entry, "emailAddress")
        if address is not None:
            found.setdefault(address, entry)  # a repeated address would repeat the event_id
    return list(found.items()) or [(None, {})]


def _event_id(sns_id: str, name: str, recipient: str | None) -> str:
    """SNS's MessageId (the same on every retry), plus the recipient for events about some recipients."""
    return f"{sns_id}:{recipient}" if name in RECIPIENT_LISTS and recipient else sns_id


def _occurred_at(body: dict[str, Any], mail: dict[str, Any], envelope: dict[str, Any]) -> datetime:
    """The event's own time (bounce.timestamp, ...), else when the mail was sent, else SNS's publish time."""
    for where, value in (("event timestamp", body.get("timestamp")), ("mail.timestamp", mail.get("timestamp"))):
        if value is not None:
            return parse_timestamp(value, where)
    return parse_timestamp(envelope.get("Timestamp"), "SNS Timestamp")


def _tags(value: object) -> tuple[str, ...]:
    """SES message tags {name: [values]} as `name=value`, one per value, in the order SES gives them."""
    tags = value if isinstance(value, dict) else {}
    return tuple(
        f"{name}={item}" for name, items in tags.items() for item in (items if isinstance(items, list) else [items])
    )


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in as_list(value) if isinstance(item, dict)]


# --- Details: each event type's schema fields ----------------------------------------------------------


def _delivered(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {"reason": None, **smtp_fields(string_field(body, "smtpResponse"), SMTP_REPLY), "session_id": None}


def _deferred(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    smtp = smtp_fields(string_field(entry, "diagnosticCode"), SMTP_REPLY, string_field(entry, "status"))
    return {"reason": string_field(body, "delayType"), **smtp, "bounce_class": None}


def _bounced(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    kind, subtype = string_field(body, "bounceType"), string_field(body, "bounceSubType")
    return {
        "reason": subtype,
        **smtp_fields(string_field(entry, "diagnosticCode"), SMTP_REPLY, string_field(entry, "status")),
        "bounce_class": f"{kind}/{subtype}" if kind or subtype else None,
    }


def _suppressed(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {"reason": string_field(body, "bounceSubType") or string_field(body, "complaintSubType")}


def _failed(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    reason = string_field(body, "reason") or string_field(body, "errorMessage")  # Reject / Rendering Failure
    return {"reason": reason, **smtp_fields(None, SMTP_REPLY), "error_code": None}


def _headers(mail: dict[str, Any]) -> dict[str, Any]:
    return object_field(mail, "commonHeaders")


def _addresses(value: object) -> list[str]:
    return [
        address for _, address in getaddresses([item for item in as_list(value) if isinstance(item, str)]) if address
    ]


def _created(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    headers = _headers(mail)
    senders = [item for item in as_list(headers.get("from")) if isinstance(item, str)] or [str(mail.get("source", ""))]
    name, address = parseaddr(senders[0])
    return {
        "subject": string_field(headers, "subject"),
        "from_address": address or None,
        "from_name": name or None,
        "to": _addresses(headers.get("to"))
        or [item for item in as_list(mail.get("destination")) if isinstance(item, str)],
        "cc": _addresses(headers.get("cc")),
        "bcc": _addresses(headers.get("bcc")),
        "reply_to": next(iter(_addresses(headers.get("replyTo"))), None),
    }


def _opened(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {
        "subject": string_field(_headers(mail), "subject"),
        "first": None,
        "user_agent": string_field(body, "userAgent"),
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": string_field(body, "ipAddress"),
    }


def _clicked(body: dict[str, Any], entry: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {**_opened(body, entry, mail), "url": string_field(body, "link"), "link_index": None}


DETAILS: dict[str, Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Details]] = {
    "message.created": _created,
    "message.delivered": _delivered,
    "message.deferred": _deferred,
    "message.hard_bounced": _bounced,
    "message.soft_bounced": _bounced,
    "message.suppressed": _suppressed,
    "message.spam_complaint": lambda body, entry, mail: {"feedback_type": string_field(body, "complaintFeedbackType")},
    "message.failed": _failed,
    "message.opened": _opened,
    "message.clicked": _clicked,
}

# --- Examples for `bridge send-test` -------------------------------------------------------------------

EXAMPLE_RECIPIENT = "recipient@example.com"
# Objects that carry no timestamp of their own (the docs' Send and Reject records).
UNSTAMPED_EVENTS = frozenset({"Send", "Reject"})
EXAMPLE_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "message.created": ("Send", {}),
    "message.delivered": (
        DELIVERY,
        {"recipients": [EXAMPLE_RECIPIENT], "smtpResponse": "250 2.6.0 Message received", "processingTimeMillis": 812},
    ),
    "message.deferred": (
        DELIVERY_DELAY,
        {
            "delayType": "MailboxFull",
            "delayedRecipients": [
                {"emailAddress": EXAMPLE_RECIPIENT, "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}
            ],
        },
    ),
    "message.hard_bounced": (
        BOUNCE,
        {
            "bounceType": "Permanent",
            "bounceSubType": "NoEmail",
            "bouncedRecipients": [
                {"emailAddress": EXAMPLE_RECIPIENT, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
    ),
    "message.soft_bounced": (
        BOUNCE,
        {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}],
        },
    ),
    "message.suppressed": (
        BOUNCE,
        {
            "bounceType": "Permanent",
            "bounceSubType": "Suppressed",
            "bouncedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}],
        },
    ),
    "message.spam_complaint": (
        COMPLAINT,
        {"complainedRecipients": [{"emailAddress": EXAMPLE_RECIPIENT}], "complaintFeedbackType": "abuse"},
    ),
    "message.failed": ("Reject", {"reason": "Bad content"}),
    "message.opened": ("Open", {"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"}),
    "message.clicked": (
        "Click",
        {"ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0", "link": "https://example.com/"},
    ),
    "message.unsubscribed": (
        SUBSCRIPTION,
        {"contactList": "Newsletter", "source": "UnsubscribeHeader", "newTopicPreferences": {"unsubscribeAll": True}},
    ),
}


def _example_message(event_type: str, stamp: str) -> dict[str, Any]:
    name, body = EXAMPLE_EVENTS[event_type]
    mail = {
        "timestamp": stamp,
        "source": "sender@example.com",
        "messageId": f"send-test-{uuid.uuid4()}",
        "destination": [EXAMPLE_RECIPIENT],
        "commonHeaders": {"from": ["sender@example.com"], "to": [EXAMPLE_RECIPIENT], "subject": "bridge send-test"},
        "tags": {"ses:configuration-set": ["send-test"]},
    }
    stamped = body if name in UNSTAMPED_EVENTS else {**body, "timestamp": stamp}
    return {"eventType": name, "mail": mail, EVENT_OBJECTS[name]: stamped}
