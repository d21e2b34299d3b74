"""What verification shares across providers: header reading, timestamp windows, `t=…,v1=…`, HMAC, Basic auth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.errors import SignatureInvalid, StaleTimestamp
from bridge.headers import Headers
from bridge.settings import SourceSettings

HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
DIGITS = re.compile(r"[0-9]{1,16}")


def single_header(headers: Headers, *names: str) -> str:
    """The first of `names` present, which must appear once (a repeated header is ambiguous)."""
    name = next((name for name in names if name in headers), None)
    if name is None:
        raise SignatureInvalid(f"missing header {' or '.join(names)}", "missing_header")
    values = headers.getlist(name)
    if len(values) > 1:
        raise SignatureInvalid(f"header {name} appears {len(values)} times", "malformed_header")
    return values[0]


def check_age(timestamp: str, now: float, source: SourceSettings) -> None:
    """Raise StaleTimestamp if the signed Unix `timestamp` is further than the tolerance from `now`."""
    age = int(now) - int(timestamp)  # whole seconds (Standard Webhooks counts the fraction: it checks its own)
    if abs(age) > source.tolerance_seconds:
        raise StaleTimestamp(f"signed {age} s ago; tolerance is {source.tolerance_seconds} s")


@dataclass(frozen=True)
class TimestampedSignature:
    """`t=<unix>,v1=<hex>[,v1=<hex>…]` (Lettermint, Lettr): the signed timestamp and the candidate digests."""

    timestamp: str
    signatures: tuple[str, ...]

    @classmethod
    def parse(cls, header: str, name: str = "the signature header") -> TimestampedSignature:
        """Unknown keys (v2=) and malformed v1 values are skipped, as the providers' SDKs do; exactly one t=."""
        timestamps, signatures = [], []
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key == "t":
                timestamps.append(value)
            elif key == "v1" and HEX_DIGEST.fullmatch(value):
                signatures.append(value.lower())
        if len(timestamps) != 1:
            raise SignatureInvalid(f"{name} needs exactly one t=", "malformed_header")
        if not DIGITS.fullmatch(timestamps[0]):
            raise SignatureInvalid(f"{name}: the signed timestamp is not a number of seconds", "malformed_header")
        if not signatures:
            raise SignatureInvalid(f"{name} has no well-formed v1=", "malformed_header")
        return cls(timestamps[0], tuple(signatures))


def hmac_hex(key: str | bytes, message: bytes) -> str:
    """Hex HMAC-SHA256; a str key is used as its UTF-8 bytes (no base64 or hex decoding)."""
    return hmac.new(key.encode() if isinstance(key, str) else key, message, hashlib.sha256).hexdigest()


def matches_any(expected: Iterable[str | bytes], given: Iterable[str | bytes]) -> bool:
    """Whether any given digest equals any expected one, each comparison in constant time."""
    wanted = [_bytes(value) for value in expected]
    return any(hmac.compare_digest(want, _bytes(got)) for got in given for want in wanted)


def same(given: bytes, expected: bytes) -> bool:
    """Constant time in content and length: compare_digest over SHA-256 digests of both."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


def _bytes(value: str | bytes) -> bytes:
    # Bytes, not str: compare_digest refuses non-ASCII strings.
    return value.encode() if isinstance(value, str) else value


# --- HTTP Basic (RFC 7617) --------------------------------------------------------------------------


class BasicCredential(BaseModel):
    """One accepted username and password; several are configured while credentials are rotated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    # Usually "${ENV}"-substituted. Configure it decoded ("p@ss", not a URL's "p%40ss").
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


def credential(header: str, scheme: str) -> str:
    """The credentials of an `Authorization: <scheme> <credentials>` value; the scheme is case-insensitive."""
    given, _, value = header.strip().partition(" ")
    if given.lower() != scheme.lower():
        raise SignatureInvalid(f"expected Authorization: {scheme}", "malformed_header")
    return value.strip()


def decode_basic(header: str) -> tuple[bytes, bytes]:
    """(user, password) as sent in an `Authorization: Basic …` value."""
    try:
        decoded = base64.b64decode(credential(header, "Basic"), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text
        raise SignatureInvalid("the Basic credentials are not base64", "malformed_header") from None
    user, colon, password = decoded.partition(b":")
    if not colon:
        raise SignatureInvalid("the Basic credentials have no ':'", "malformed_header")
    return user, password


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
