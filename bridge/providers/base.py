"""The Provider interface: pure functions from raw bytes + headers to verified canonical events."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers

from bridge.errors import PayloadInvalid
from bridge.events import CanonicalEvent, Delivery
from bridge.settings import SourceSettings

OptionsT = TypeVar("OptionsT", bound=BaseModel)


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


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. UTF-8 only (RFC 8259), though json.loads would guess UTF-16/32."""
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise PayloadInvalid(f"body is not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise PayloadInvalid(f"body is not JSON: {error}") from None
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
