"""The Provider interface, and the small helpers the providers share (headers, JSON, field readers)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers

from bridge.errors import PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import CanonicalEvent, Delivery
from bridge.settings import SourceSettings

OptionsT = TypeVar("OptionsT", bound=BaseModel)
Details = dict[str, Any]  # CanonicalEvent.details: the fields of one event type's schema


class NoOptions(BaseModel):
    """For providers configured by secrets alone: any `options` key is an error."""

    model_config = {"extra": "forbid", "frozen": True}


class Provider(Protocol):
    """One webhook provider: how it signs, and how its payloads map to canonical events.

    Implementations do no I/O and read no clock or environment: `now` is passed in, so tests pin
    it. `normalise` runs only on a body `verify` accepted. A provider whose verification needs I/O
    (SNS fetches signing certificates) makes `verify` a coroutine function, with the I/O injected.
    """

    name: str

    def check(self, source: SourceSettings) -> object:
        """Validate a source's secrets and options at start-up; return the parsed options.

        Raise ValueError naming the key (`options.username: Field required`).
        """

    def verify(self, headers: Headers, body: bytes, source: SourceSettings, now: float) -> Awaitable[None] | None:
        """Raise SignatureInvalid (or StaleTimestamp) unless the delivery is authentic."""

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        """Turn a verified body into events; raise PayloadInvalid if it is unusable."""

    def sign(self, body: bytes, secret: str, now: float) -> dict[str, str]:
        """The headers the provider would send with `body` (for `bridge send-test`)."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """A fresh delivery body of `event_type`, as the provider would send it."""


@runtime_checkable
class TokenIssuer(Protocol):
    """A provider that fetches OAuth2 client-credentials tokens from us (Lettr): the bridge serves
    `POST /webhooks/{source}/token` and later verifies the Bearer token it issued."""

    def issue_token(
        self, form: Mapping[str, str], authorization: str | None, source: SourceSettings, now: float
    ) -> dict[str, Any]:
        """The token response (RFC 6749 §5.1) for valid client credentials; raise SignatureInvalid otherwise."""


@runtime_checkable
class Handshake(Protocol):
    """A provider that sends control messages before events (SNS SubscriptionConfirmation)."""

    async def handshake(self, delivery: Delivery, source: SourceSettings) -> dict[str, Any] | None:
        """For a verified control message: act on it and return the response body; else None."""


@runtime_checkable
class BodySigner(Protocol):
    """A provider whose signature lives inside the body (Mailgun, SNS): `bridge send-test` signs
    the example body itself before `sign` adds the headers."""

    def sign_body(self, body: bytes, secret: str, now: float) -> bytes:
        """`body` with the provider's in-body signature made with `secret` at `now`."""


@runtime_checkable
class SendTestSecret(Protocol):
    """A provider whose send-test credential is not simply the source's first secret (Postmark)."""

    def send_test_secret(self, source: SourceSettings) -> str:
        """What `sign` takes as `secret` to make a delivery this source accepts."""


@runtime_checkable
class PrivateHeaders(Protocol):
    """A provider that takes credentials in headers of the operator's choosing (Postmark's custom
    header): those are never copied into dead-letter records."""

    def private_headers(self, source: SourceSettings) -> frozenset[str]:
        """Lower-case names of the request headers that carry this source's credentials."""


def parse_options(model: type[OptionsT], source: SourceSettings) -> OptionsT:
    """`source.options` validated by a provider's pydantic model, errors naming `options.<key>`."""
    try:
        return model.model_validate(source.options)
    except ValidationError as error:
        problems = (
            f"options.{'.'.join(str(part) for part in problem['loc'])}: "
            + ("unknown key" if problem["type"] == "extra_forbidden" else problem["msg"])
            for problem in error.errors()
        )
        raise ValueError("; ".join(problems)) from None


def require_secrets(source: SourceSettings) -> None:
    if not source.secrets:
        raise ValueError("secrets: this provider needs at least one secret")


# --- Verification ---------------------------------------------------------------------------------


def single_header(headers: Headers, *names: str) -> str:
    """The first of `names` present, which must appear once (a repeated header is ambiguous)."""
    name = next((name for name in names if name in headers), None)
    if name is None:
        raise SignatureInvalid(f"missing header {' or '.join(names)}")
    values = headers.getlist(name)
    if len(values) > 1:
        raise SignatureInvalid(f"header {name} appears {len(values)} times")
    return values[0]


def check_age(timestamp: str, now: float, source: SourceSettings) -> None:
    """Raise StaleTimestamp if the signed Unix `timestamp` is further than the tolerance from `now`."""
    age = int(now) - int(timestamp)  # whole seconds (Standard Webhooks counts the fraction: it checks its own)
    if abs(age) > source.tolerance_seconds:
        raise StaleTimestamp(f"signed {age} s ago; tolerance is {source.tolerance_seconds} s")


# --- Payloads -------------------------------------------------------------------------------------


def parse_json(body: bytes, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """The body as JSON. UTF-8 only (RFC 8259), though json.loads would guess UTF-16/32.

    `parse_constant` is json.loads's hook for NaN and Infinity, for a caller that refuses them.
    """
    try:
        return json.loads(body.decode("utf-8"), parse_constant=parse_constant)
    except UnicodeDecodeError as error:
        raise PayloadInvalid(f"body is not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise PayloadInvalid(f"body is not JSON: {error}") from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise PayloadInvalid(f"body is JSON {type(value).__name__}, expected an object")
    return value


def parse_timestamp(value: object, field: str) -> datetime:
    """ISO 8601 with an offset or `Z`; naive times are rejected rather than guessed."""
    if not isinstance(value, str):
        raise PayloadInvalid(f"{field}: expected an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadInvalid(f"{field}: not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise PayloadInvalid(f"{field}: timestamp has no time zone: {value!r}")
    return parsed


def optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def stringify_map(value: object) -> dict[str, str]:
    """Provider metadata as map<string,string>: strings kept, anything else as compact JSON."""
    if not isinstance(value, dict):
        return {}
    return {
        str(key): item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))
        for key, item in value.items()
    }


def derived_id(data: bytes) -> str:
    """An event id for events that carry none: the same bytes, as a retry sends, give the same id."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- Field readers: a field of the expected JSON type, else an empty value --------------------------


def object_field(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def string_field(data: dict[str, Any], name: str) -> str | None:
    """A non-empty string; anything else (a number too) is None."""
    return optional_str(data.get(name))


def text_field(data: dict[str, Any], name: str) -> str | None:
    """A non-empty string, or an integer as its digits: for payloads that send ids and codes as either."""
    value = data.get(name)
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def flag_field(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    return value if isinstance(value, bool) else None


def number_field(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def no_details(*_: object) -> Details:
    """The details of an event type whose schema has no fields of its own; it takes any mapper's arguments."""
    return {}


def smtp_fields(reply: str | None, pattern: re.Pattern[str], enhanced: str | None = None) -> Details:
    """The smtp_* details of a receiving server's reply ("550 5.1.1 No such user").

    `pattern` is how the provider quotes replies: group 1 the reply code, group 2 the enhanced status,
    if any. A separately stated `enhanced` status wins over the one in the text.
    """
    match = pattern.match(reply or "")
    return {
        "smtp_status_code": int(match.group(1)) if match else None,
        "smtp_enhanced_status_code": enhanced or (match.group(2) if match else None),
        "smtp_response": reply,
    }
