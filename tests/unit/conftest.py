"""Shared fixtures for the settings, avro and app unit tests: a registry, a publisher, a clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient

from bridge import settings as config
from bridge.errors import PublishFailed
from bridge.publisher import Record

# 2025-08-08T20:15:12Z, the recorded Lettermint fixtures' created_at.
FIXED = 1754684112.0
SECRET = "whsec_unit-test-secret"
SOURCE = "lm"
MINIMAL_YAML = f"""
kafka: {{bootstrap_servers: "127.0.0.1:1"}}
schema_registry: {{url: "mock://unit"}}
topics: {{prefix: webhooks}}
sources:
  - {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}
"""


class MockRegistry(MockSchemaRegistryClient):
    """confluent-kafka's in-memory registry (what a `mock://` URL selects), plus compatibility.

    The mock does not override set_compatibility, so the inherited one makes an HTTP request to
    `mock://...` and fails; here it records the level per subject instead.
    """

    def __init__(self, name: str = "unit") -> None:
        super().__init__({"url": f"mock://{name}"})
        self.compatibility: dict[str | None, str | None] = {}

    def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
        self.compatibility[subject_name] = level
        return str(level)


class FakePublisher:
    """Records what it is asked to publish; `failure` makes publish raise, `is_ready` drives /readyz."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.failure: PublishFailed | None = None
        self.is_ready = True
        self.fatal: str | None = None

    async def publish(self, records: Sequence[Record]) -> None:
        if self.failure is not None:
            raise self.failure
        self.records.extend(records)

    async def ready(self) -> bool:
        return self.is_ready


@pytest.fixture
def registry() -> MockRegistry:
    return MockRegistry()


@pytest.fixture
def settings() -> config.Settings:
    server = "server: {max_body_bytes: 1024, retry_after_seconds: 17}\n"
    return config.parse(MINIMAL_YAML + server, environ={})
