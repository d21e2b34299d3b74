"""Fixtures for the settings, avro and app unit tests: a registry, a configuration, a fake publisher and an app
over them (`client`: started, its schemas registered)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from tests.support.fakes import FIXED, MINIMAL_YAML, FakePublisher, MockRegistry, wait_until_registered


@pytest.fixture
def registry() -> MockRegistry:
    return MockRegistry()


@pytest.fixture
def settings() -> config.Settings:
    server = "server: {max_body_bytes: 1024, retry_after_seconds: 17}\n"
    return config.parse(MINIMAL_YAML + server, environ={})


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(settings: config.Settings, publisher: FakePublisher, registry: MockRegistry) -> Iterator[TestClient]:
    app = create_app(settings, publisher=publisher, client=registry, clock=lambda: FIXED)
    with TestClient(app) as test_client:
        wait_until_registered(test_client)
        yield test_client
