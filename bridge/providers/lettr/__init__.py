"""Lettr: Basic auth, OAuth2 Bearer tokens we issue, `lettr-signature` HMAC; SparkPost-style batches.

See docs/providers.md#lettr-lettr. The pure parts live apart: `credentials` (Basic, OAuth2 clients and
tokens), `signature`, `mapping` (batch → events) and `sender` (send-test); this module holds the
source model and the provider that puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from bridge.events import CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers.auth import BasicCredential, single_header
from bridge.providers.base import ProviderSpec
from bridge.providers.lettr import mapping
from bridge.providers.lettr.credentials import OAuth2Options, check_basic, check_bearer, token_response
from bridge.providers.lettr.sender import LettrSender
from bridge.providers.lettr.signature import SIGNATURE_HEADER, check_signature
from bridge.settings import ConfigModel, SourceSettings

NAME = "lettr"
AUTHORIZATION_HEADER = "authorization"

__all__ = ["NAME", "SIGNATURE_HEADER", "SPEC", "Lettr", "LettrOptions", "LettrSender", "LettrSource"]


class LettrOptions(ConfigModel):
    # Several pairs while credentials are rotated; any one of them is accepted.
    basic_auth: list[BasicCredential] = Field(default_factory=list)
    oauth2: OAuth2Options | None = None


class LettrSource(SourceSettings):
    """`secrets`: optional lettr-signature secrets; `options`: the Authorization credential, Basic or OAuth2."""

    provider: Literal["lettr"]
    options: LettrOptions = Field(default_factory=LettrOptions)

    @model_validator(mode="after")
    def _credentials(self) -> LettrSource:
        if self.options.basic_auth and self.options.oauth2:
            raise ValueError(
                "options: Lettr sends one Authorization header per delivery; configure basic_auth or oauth2, not both"
            )
        if not (self.options.basic_auth or self.options.oauth2 or self.secrets):
            raise ValueError("lettr needs credentials: options.basic_auth, options.oauth2 and/or secrets")
        return self


class Lettr:
    """Every configured credential must pass: Basic or Bearer (Authorization), and the signature."""

    def verify(self, headers: Headers, body: bytes, source: LettrSource, now: float) -> None:
        options = source.options
        if options.basic_auth:
            check_basic(single_header(headers, AUTHORIZATION_HEADER), options.basic_auth)
        if options.oauth2 is not None:
            check_bearer(single_header(headers, AUTHORIZATION_HEADER), options.oauth2.clients, source.name, now)
        if source.secrets:
            check_signature(single_header(headers, SIGNATURE_HEADER), body, source, now)

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        return mapping.normalise(delivery)

    def issue_token(
        self, form: Mapping[str, str], authorization: str | None, source: LettrSource, now: float
    ) -> dict[str, Any] | None:
        """RFC 6749 §4.4 client credentials; the token is stateless, so any replica verifies it.

        None for a source without options.oauth2: it has no token endpoint (the HTTP layer answers 404).
        """
        if source.options.oauth2 is None:
            return None
        return token_response(form, authorization, source.options.oauth2, source.name, now)


SPEC = ProviderSpec(name=NAME, source=LettrSource, build=lambda io: Lettr(), sender=LettrSender)
