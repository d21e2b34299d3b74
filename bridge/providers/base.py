"""The provider interface: what serving needs (verify, normalise), the optional capabilities, and send-test's part.

A provider module declares three things and registers them as one `ProviderSpec`:
- its source model: `SourceSettings` with `provider: Literal["<name>"]` and typed `options`;
- the provider: `verify` and `normalise`, pure, with the clock passed in;
- a sender for `bridge send-test`: example bodies and how to sign them, kept out of serving.

Optional server capabilities (`Preparer`, `Handshaker`, `TokenIssuer`) are found once, when the
app builds its routes (bridge/routes.py), never per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from bridge.events import CanonicalEvent, Delivery
from bridge.fetch import HttpGet, http_getter
from bridge.headers import Headers
from bridge.settings import SourceSettings

SourceT = TypeVar("SourceT", bound=SourceSettings, contravariant=True)
SourceModel = TypeVar("SourceModel", bound=SourceSettings)


class Provider(Protocol[SourceT]):
    """One webhook provider: how it authenticates deliveries, and how its payloads map to canonical events.

    Implementations do no I/O and read no clock or environment: `now` is passed in, so tests pin it.
    `normalise` runs only on a body `verify` accepted.
    """

    def verify(self, headers: Headers, body: bytes, source: SourceT, now: float) -> None:
        """Raise SignatureInvalid (or StaleTimestamp) unless the delivery is authentic."""

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        """Turn a verified body into events; raise PayloadInvalid if it is unusable."""


@runtime_checkable
class Preparer(Protocol[SourceT]):
    """A provider whose verification needs I/O first (SNS: fetch the signing certificate).

    `prepare` does that I/O before the pure `verify`, so `verify` keeps one, synchronous signature.
    """

    async def prepare(self, headers: Headers, body: bytes, source: SourceT, now: float) -> None:
        """Fetch what `verify` will need; raise SignatureInvalid or Unavailable when it cannot be had."""


@runtime_checkable
class Handshaker(Protocol[SourceT]):
    """A provider that sends control messages before events (SNS SubscriptionConfirmation)."""

    async def handshake(self, delivery: Delivery, source: SourceT) -> dict[str, Any] | None:
        """For a verified control message: act on it and return the response body; else None."""


@runtime_checkable
class TokenIssuer(Protocol[SourceT]):
    """A provider that fetches OAuth2 client-credentials tokens from us (Lettr): the bridge serves
    `POST /webhooks/{source}/token` and later verifies the Bearer token it issued."""

    def issue_token(
        self, form: Mapping[str, str], authorization: str | None, source: SourceT, now: float
    ) -> dict[str, Any] | None:
        """The token response (RFC 6749 §5.1) for valid client credentials; raise SignatureInvalid
        otherwise. None where this source has no token endpoint."""


class Sender(Protocol[SourceT]):
    """`bridge send-test`'s part: a fresh example delivery, signed as the provider would sign it."""

    def example(self, event_type: str, now: datetime) -> bytes:
        """A delivery body of `event_type`; ValueError if the provider sends no such event."""

    def sign(self, body: bytes, source: SourceT, now: float) -> tuple[bytes, dict[str, str]]:
        """The body (signed inside, where the provider signs there) and the headers to send with it.

        ValueError where the source's configuration cannot make a delivery it accepts.
        """


@dataclass(frozen=True)
class ProviderIO:
    """The I/O a provider may be given, built per app (tests pass fakes)."""

    http_get: HttpGet

    @classmethod
    def default(cls) -> ProviderIO:
        return cls(http_get=http_getter())


@dataclass(frozen=True)
class ProviderSpec(Generic[SourceModel]):
    """A provider as the registry knows it: its name, source model, factory and sender."""

    name: str
    source: type[SourceModel]
    build: Callable[[ProviderIO], Provider[SourceModel]]
    sender: Callable[[], Sender[SourceModel]]
