"""Stand-ins for the unit tests: a minimal configuration, an in-memory registry, a publisher that records."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from starlette.testclient import TestClient

from bridge.errors import BridgeError
from bridge.records import Record

# 2025-08-08T20:15:12Z, the recorded Lettermint fixtures' created_at.
FIXED = 1754684112.0
SECRET = "whsec_unit-test-secret"
SOURCE = "lm"
# A recorded Lettermint message.delivered, signed in tests at FIXED.
DELIVERED = (Path(__file__).resolve().parents[1] / "fixtures" / "lettermint" / "message.delivered.json").read_bytes()
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
        self.failure: BridgeError | None = None
        self.is_ready = True
        self.fatal: str | None = None
        self.queued = 0
        self.entered = self.exited = 0

    async def publish(self, records: Sequence[Record]) -> None:
        if self.failure is not None:
            raise self.failure
        self.records.extend(records)

    async def ready(self) -> bool:
        return self.is_ready

    def problems(self) -> list[str]:
        return []

    async def __aenter__(self) -> FakePublisher:
        self.entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited += 1


def wait_until_registered(client: TestClient) -> None:
    """The lifespan registers the schemas in the background; /readyz waits for it, so do we."""
    deadline = time.monotonic() + 5
    while "bridge_schemas_registered 1.0" not in client.get("/metrics").text:
        assert time.monotonic() < deadline, "schemas were not registered"
        time.sleep(0.01)
