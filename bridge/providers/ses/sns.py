"""SNS HTTP messages, pure: `parse` judges an envelope without the key, `check_signature` with it."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.errors import PayloadInvalid, SignatureInvalid
from bridge.headers import Headers
from bridge.providers.fields import parse_json

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


@dataclass(frozen=True)
class SignedMessage:
    """An SNS message whose shape checked out: the bytes its signature covers, and how to check it."""

    kind: str
    signed: bytes
    signature: bytes
    algorithm: Callable[[], hashes.HashAlgorithm]
    certificate_url: str


def parse(headers: Headers, body: bytes, topic_arns: Collection[str]) -> SignedMessage:
    """Everything about a delivery that can be judged without the signing key; SignatureInvalid says what failed.

    SNS signs inside the body, so the body is parsed before it is authenticated: anything that does
    not parse, or lacks a signed field, is a SignatureInvalid. `topic_arns` is the source's allow-list,
    checked as soon as TopicArn is known to be a signed field.
    """
    try:
        envelope = parse_envelope(body, PayloadInvalid)
    except PayloadInvalid as error:
        raise SignatureInvalid(str(error), "malformed_body") from None
    kind = message_type(envelope, headers)
    signed = string_to_sign(envelope, kind)
    if envelope["TopicArn"] not in topic_arns:
        raise SignatureInvalid(f"TopicArn {envelope['TopicArn']!r} is not in options.topic_arns", "topic_not_allowed")
    version = envelope.get("SignatureVersion")
    algorithm = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise SignatureInvalid(f'SignatureVersion {version!r} is not "1" or "2"', "unsupported_algorithm")
    signature = _base64(envelope.get("Signature"))
    url = sns_url(envelope.get("SigningCertURL"), "SigningCertURL", PEM_SUFFIX)
    if kind != NOTIFICATION:
        sns_url(envelope.get("SubscribeURL"), "SubscribeURL")
    return SignedMessage(kind, signed, signature, algorithm, url)


def check_signature(message: SignedMessage, key: rsa.RSAPublicKey) -> None:
    try:
        key.verify(message.signature, message.signed, padding.PKCS1v15(), message.algorithm())
    except InvalidSignature:
        raise SignatureInvalid(
            "the SNS signature does not match the signing certificate", "no_matching_signature"
        ) from None


def parse_envelope(body: bytes, error: type[Exception]) -> dict[str, Any]:
    """The SNS JSON document; `error` is SignatureInvalid before verification, PayloadInvalid after."""
    value = parse_json(body, error=error, what="the SNS document")
    if not isinstance(value, dict):
        raise error(f"body is JSON {type(value).__name__}, expected an SNS message object")
    return value


def message_type(envelope: dict[str, Any], headers: Headers) -> str:
    kind = envelope.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_KEYS:
        raise SignatureInvalid(f"Type {kind!r} is not an SNS HTTP message type", "malformed_body")
    # The headers are not signed, but a mismatch with the signed body means someone edited one of them.
    for header, key in ((MESSAGE_TYPE_HEADER, "Type"), (TOPIC_ARN_HEADER, "TopicArn")):
        if header in headers and headers[header] != envelope.get(key):
            raise SignatureInvalid(f"header {header} does not match the body's {key}", "malformed_header")
    return kind


def string_to_sign(envelope: dict[str, Any], kind: str) -> bytes:
    parts = []
    for key in SIGNED_KEYS.get(kind, ()):
        value = envelope.get(key)
        if value is None and key in OPTIONAL_SIGNED_KEYS:
            continue
        if not isinstance(value, str):
            raise SignatureInvalid(f"signed field {key} is missing or not a string", "malformed_body")
        parts.append(f"{key}\n{value}\n")
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:  # a JSON "\ud800" escape: it parses, but no text SNS signed holds it
        raise SignatureInvalid("a signed field holds a lone surrogate, which is not text", "malformed_body") from None


def sns_url(value: object, field_name: str, suffix: str = "") -> str:
    """An https:// URL on an SNS host, no credentials or odd port: checked before anything is fetched."""
    if not isinstance(value, str):
        raise SignatureInvalid(f"{field_name} is missing", "certificate_untrusted")
    # urlsplit silently drops tabs and newlines, so what it checked would not be what is fetched.
    if not value.isascii() or not value.isprintable() or " " in value:
        raise SignatureInvalid(f"{field_name} has spaces or control characters", "certificate_untrusted")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise SignatureInvalid(f"{field_name} is not a URL", "certificate_untrusted") from None
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or port not in (None, 443):
        raise SignatureInvalid(f"{field_name} must be a plain https:// URL: {value!r}", "certificate_untrusted")
    if not SNS_HOST.fullmatch(parts.hostname or "") or not parts.path.endswith(suffix):
        raise SignatureInvalid(f"{field_name} is not on an SNS host: {value!r}", "certificate_untrusted")
    return value


def certificate_key(pem: bytes) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM X.509 certificate; SignatureInvalid for anything else."""
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise SignatureInvalid(
            "the signing certificate is not a PEM X.509 certificate", "certificate_untrusted"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid("the signing certificate does not hold an RSA key", "certificate_untrusted")
    return key


def subscription_arn(answer: bytes) -> str | None:
    """The SubscriptionArn in SNS's answer to a SubscribeURL GET (XML), where it names one."""
    found = SUBSCRIPTION_ARN.search(answer.decode("utf-8", "replace"))
    return found.group(1) if found else None


def _base64(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SignatureInvalid("Signature is missing", "malformed_body")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise SignatureInvalid("Signature is not base64", "malformed_body") from None
