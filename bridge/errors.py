"""The bridge's error hierarchy; app.py maps each class's `status_code` to the HTTP answer."""

from __future__ import annotations

from typing import Literal, get_args


class BridgeError(Exception):
    """Base class. `code` is a stable machine-readable name, `status_code` the HTTP answer.

    `retry_after` (seconds), where set, is sent as `Retry-After`; Unavailable errors without one
    get `server.retry_after_seconds`.
    """

    status_code = 500
    code = "internal_error"
    retry_after: int | None = None


class UnknownSource(BridgeError):
    status_code = 404
    code = "unknown_source"


class MethodNotAllowed(BridgeError):
    """A webhook endpoint takes POST only."""

    status_code = 405
    code = "method_not_allowed"


class PayloadTooLarge(BridgeError):
    status_code = 413
    code = "payload_too_large"


class RecordTooLarge(BridgeError):
    """A record larger than Kafka takes: permanent, so never a 503 that would be retried for ever."""

    status_code = 413
    code = "record_too_large"


class ClientAborted(BridgeError):
    """The client went away (or was cut off) before its body was read: nothing to answer.

    499 is nginx's "client closed request"; it only ever reaches the metrics and the log.
    """

    status_code = 499
    code = "client_aborted"


class RateLimited(BridgeError):
    """The source's rate limit is spent; `retry_after` says when a token is back."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Why a delivery failed verification: bridge_verification_failures_total's `reason` label and a log field,
# never the HTTP answer (that stays `code`, so a forger learns no more than before). A fixed vocabulary keeps
# the label's series bounded; README "Operating it" says what each means.
Reason = Literal[
    "missing_header",  # no signature or Authorization header (a proxy that strips it?)
    "malformed_header",  # present but not in the provider's form: not hex/base64, no t= or v1=, repeated
    "malformed_body",  # Mailgun and SNS sign inside the body: it or its signed fields cannot be read
    "no_matching_signature",  # well-formed, but no configured secret or key made it (wrong or rotated secret)
    "bad_credentials",  # Basic, OAuth2 client, Bearer token or secret header: no configured one matches
    "stale_timestamp",  # signed outside tolerance_seconds (clock skew, or a replay)
    "expired_token",  # a Bearer token we issued, past its expiry
    "replayed",  # a Mailgun token already seen within the tolerance
    "topic_not_allowed",  # an SNS TopicArn outside options.topic_arns
    "unsupported_algorithm",  # an SNS SignatureVersion other than 1 or 2
    "certificate_untrusted",  # an SNS SigningCertURL/SubscribeURL off SNS's hosts, or not a PEM RSA certificate
    "certificate_fetch_failed",  # SNS's host has no such certificate (4xx), or it was never fetched
    "verifier_failed",  # the verifier raised something unexpected: a bug, logged at ERROR
]
REASONS: tuple[Reason, ...] = get_args(Reason)


class SignatureInvalid(BridgeError):
    """Missing, malformed or non-matching credentials: nothing is published. `reason` says which (see Reason)."""

    status_code = 401
    code = "signature_invalid"
    default_reason: Reason = "no_matching_signature"

    def __init__(self, message: str, reason: Reason | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason or self.default_reason


class StaleTimestamp(SignatureInvalid):
    """The signed timestamp is outside the source's tolerance (replay protection)."""

    code = "stale_timestamp"
    default_reason: Reason = "stale_timestamp"


class PayloadInvalid(BridgeError):
    """A verified body we cannot turn into events. Never answered: the pipeline dead-letters it."""

    status_code = 422
    code = "payload_invalid"


class Unavailable(BridgeError):
    """Kafka or the registry could not take the delivery in time; the provider should retry."""

    status_code = 503
    code = "unavailable"


class PublishFailed(Unavailable):
    code = "publish_failed"


class RegistryUnavailable(Unavailable):
    code = "registry_unavailable"


class ConfigError(Exception):
    """Invalid configuration; the message names the offending key."""
