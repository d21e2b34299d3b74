"""Amazon SES via SNS: RSA-signed SNS envelopes around SES events (docs/providers.md#amazon-ses-via-sns-ses)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import Field, PrivateAttr, model_validator

from bridge.errors import PayloadInvalid, SignatureInvalid, Unavailable
from bridge.events import CanonicalEvent, Delivery
from bridge.fetch import FetchError, HttpGet, http_getter
from bridge.headers import Headers
from bridge.providers.base import ProviderSpec
from bridge.providers.ses import mapping, sns
from bridge.providers.ses.certificates import CertificateCache, fetch_key, known_key, pinned_key
from bridge.providers.ses.sender import EXAMPLE_TOPIC_ARN, SEND_TEST_CERT_URL, SesSender, private_key
from bridge.settings import ConfigModel, SourceSettings

__all__ = ["EXAMPLE_TOPIC_ARN", "NAME", "SEND_TEST_CERT_URL", "SPEC", "Ses", "SesOptions", "SesSource"]

log = logging.getLogger(__name__)

NAME = "ses"


class SesOptions(ConfigModel):
    topic_arns: list[str] = Field(
        description="Required: an SNS endpoint that accepts any topic accepts anyone's AWS account."
    )
    certificates: dict[str, str] = Field(
        {}, description="SigningCertURL -> PEM certificate, trusted without fetching (egress-restricted clusters)."
    )
    confirm_subscriptions: bool = Field(
        False, description="GET the SubscribeURL of a verified SubscriptionConfirmation; otherwise log it."
    )


class SesSource(SourceSettings):
    """`options`: the topic allow-list, pinned certificates; `secrets`: PEM RSA private keys, for send-test only."""

    provider: Literal["ses"]
    options: SesOptions
    _pinned: dict[str, rsa.RSAPublicKey] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SesSource:
        if not self.options.topic_arns:
            raise ValueError("options.topic_arns: list at least one TopicArn; an empty allow-list accepts any topic")
        for arn in self.options.topic_arns:
            if not sns.TOPIC_ARN.fullmatch(arn):
                raise ValueError(f"options.topic_arns: not an SNS topic ARN: {arn!r}")
        for secret in self.secret_values():
            private_key(secret)  # secrets only sign `bridge send-test` deliveries
        for url, pem in self.options.certificates.items():
            try:
                self._pinned[url] = pinned_key(url, pem)
            except SignatureInvalid as error:
                raise ValueError(f"options.certificates.{url}: {error}") from None
        return self

    @property
    def pinned_keys(self) -> Mapping[str, rsa.RSAPublicKey]:
        """`options.certificates`, parsed once: certificate URL → its RSA key."""
        return self._pinned


class Ses:
    """SNS deliveries of SES events: signatures, the subscription handshake, one event per recipient.

    The signing certificate comes from `SigningCertURL` (HTTPS, SNS hosts only), pinned in
    `options.certificates` or fetched by `prepare` and cached by URL; `verify` then checks the
    signature with no I/O. There is no timestamp window: SNS's `Timestamp` is the publish time, the
    same on every retry; consumers dedupe on `event_id`, which derives from SNS's MessageId.
    """

    def __init__(
        self,
        fetch_certificate: HttpGet | None = None,
        get_url: HttpGet | None = None,
        cache: CertificateCache | None = None,
    ) -> None:
        self._fetch_certificate = fetch_certificate or http_getter()
        self._get_url = get_url or self._fetch_certificate
        # One per provider object, and bridge.providers.build makes one per app: no cache shared across apps.
        self._cache = cache or CertificateCache()

    async def prepare(self, headers: Headers, body: bytes, source: SesSource, now: float) -> None:
        """Fetch and cache the signing certificate, unless pinned or cached, for a delivery `verify` could accept.

        The whole envelope is judged first, so nothing is fetched for a malformed or foreign delivery.
        """
        url = sns.parse(headers, body, source.options.topic_arns).certificate_url
        if known_key(url, source.pinned_keys, self._cache, now) is None:
            self._cache.put(url, await fetch_key(url, self._fetch_certificate), now)

    def verify(self, headers: Headers, body: bytes, source: SesSource, now: float) -> None:
        message = sns.parse(headers, body, source.options.topic_arns)
        # The pipeline calls verify straight after prepare, no await between: what prepare cached is still there.
        key = known_key(message.certificate_url, source.pinned_keys, self._cache, now)
        if key is None:
            raise SignatureInvalid(
                f"no key for {message.certificate_url}: neither pinned nor fetched by prepare",
                "certificate_fetch_failed",
            )
        sns.check_signature(message, key)

    async def handshake(self, delivery: Delivery, source: SesSource) -> dict[str, Any] | None:
        """SubscriptionConfirmation: confirm or surface the SubscribeURL; UnsubscribeConfirmation: say so."""
        envelope = sns.parse_envelope(delivery.body, PayloadInvalid)
        kind, topic = envelope.get("Type"), str(envelope.get("TopicArn"))
        if kind == sns.UNSUBSCRIBE_CONFIRMATION:
            log.warning(
                "source=%s: SNS unsubscribed this endpoint from %s; no more events will arrive", source.name, topic
            )
            return {"status": "unsubscribed", "topic_arn": topic}
        if kind != sns.SUBSCRIPTION_CONFIRMATION:
            return None
        url = sns.sns_url(envelope.get("SubscribeURL"), "SubscribeURL")
        if not source.options.confirm_subscriptions:
            log.warning(
                "source=%s: SNS subscription to %s awaits confirmation: GET %s (or set options.confirm_subscriptions)",
                source.name, topic, url,
            )  # fmt: skip
            return {"status": "subscription-pending", "topic_arn": topic, "subscribe_url": url}
        return {"status": "subscription-confirmed", "topic_arn": topic, **await self._confirm(url, source)}

    def normalise(self, delivery: Delivery) -> list[CanonicalEvent]:
        return mapping.events(delivery)

    async def _confirm(self, url: str, source: SesSource) -> dict[str, str]:
        try:
            answer = await self._get_url(url)
        except FetchError as error:
            log.warning("source=%s: confirming the SNS subscription failed (%s); SNS will retry", source.name, error)
            raise Unavailable(f"SubscribeURL: {error}") from None
        arn = sns.subscription_arn(answer)
        return {"subscription_arn": arn} if arn else {}


SPEC = ProviderSpec(name=NAME, source=SesSource, build=lambda io: Ses(io.http_get), sender=SesSender)
