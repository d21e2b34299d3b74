"""Webhook-to-Kafka bridge: verify provider webhooks, publish them Avro-encoded, one topic per event type."""

from __future__ import annotations

import importlib.metadata


def version() -> str:
    """The installed package's version (`--version`, bridge_build_info, the AsyncAPI document's info)."""
    try:
        return importlib.metadata.version("webhook-kafka-bridge")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
