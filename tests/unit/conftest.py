"""Fixtures for the settings, avro and app unit tests: a registry and a configuration."""

from __future__ import annotations

import pytest

from bridge import config
from tests.support.fakes import MINIMAL_YAML, MockRegistry


@pytest.fixture
def registry() -> MockRegistry:
    return MockRegistry()


@pytest.fixture
def settings() -> config.Settings:
    server = "server: {max_body_bytes: 1024, retry_after_seconds: 17}\n"
    return config.parse(MINIMAL_YAML + server, environ={})
