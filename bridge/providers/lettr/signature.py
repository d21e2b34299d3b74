"""`lettr-signature`: HMAC-SHA256 of the body, in both forms Lettr has documented (docs/providers.md#lettr-lettr).

Lettr's knowledge base gives a plain hex digest of the raw body; its older authorization page gives
`t=<unix>,v1=<hex>` over `"{t}." + body` (unconfirmed, see docs/providers.md). Both are accepted.
"""

from __future__ import annotations

from bridge.errors import SignatureInvalid
from bridge.providers.auth import HEX_DIGEST, TimestampedSignature, check_age, hmac_hex, matches_any
from bridge.settings import SourceSettings

SIGNATURE_HEADER = "lettr-signature"


def check_signature(header: str, body: bytes, source: SourceSettings, now: float) -> None:
    """Raise SignatureInvalid unless a configured secret signed `body`; StaleTimestamp for an old `t=`."""
    value = header.strip()
    timestamp: str | None
    # A plain hex digest never contains '='; the timestamped form always does.
    if "=" in value:
        parsed = TimestampedSignature.parse(value, "the lettr-signature header")
        timestamp, signatures, signed = parsed.timestamp, parsed.signatures, parsed.timestamp.encode() + b"." + body
    elif HEX_DIGEST.fullmatch(value):
        timestamp, signatures, signed = None, (value.lower(),), body
    else:
        raise SignatureInvalid("lettr-signature is neither 64 hex digits nor t=...,v1=...", "malformed_header")
    if not matches_any((hmac_hex(secret, signed) for secret in source.secret_values()), signatures):
        raise SignatureInvalid("no lettr-signature matches a configured secret", "no_matching_signature")
    # The age is checked only once the signature holds: a forgery is not reported as a clock problem.
    if timestamp is not None:
        check_age(timestamp, now, source)


def plain_signature(secret: str, body: bytes) -> str:
    """The plain form: hex HMAC-SHA256 of the raw body, keyed by the secret's UTF-8 bytes."""
    return hmac_hex(secret, body)
