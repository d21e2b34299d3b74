"""The bridge's error hierarchy; app.py maps each class's `status_code` to the HTTP answer."""

from __future__ import annotations


class BridgeError(Exception):
    """Base class. `code` is a stable machine-readable name, `status_code` the HTTP answer."""

    status_code = 500
    code = "internal_error"


class UnknownSource(BridgeError):
    status_code = 404
    code = "unknown_source"


class PayloadTooLarge(BridgeError):
    status_code = 413
    code = "payload_too_large"


class SignatureInvalid(BridgeError):
    """Missing, malformed or non-matching credentials: nothing is published."""

    status_code = 401
    code = "signature_invalid"


class StaleTimestamp(SignatureInvalid):
    """The signed timestamp is outside the source's tolerance (replay protection)."""

    code = "stale_timestamp"


class PayloadInvalid(BridgeError):
    """A verified body we cannot turn into events. Never answered: the receiver dead-letters it."""

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
