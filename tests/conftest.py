"""Session fixtures shared by the integration and reliability tests: the real stack and its registry."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from tests.support.postgres import Postgres, binaries, postgres_server
from tests.support.secure import SecureStack, secure_stack
from tests.support.stack import Stack, containers, docker_answers, interrupt_on_sigterm, jvm_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A broker and a registry (tests/support/stack.py says where they come from), for the whole session."""
    interrupt_on_sigterm()
    named = os.environ.get("BRIDGE_TEST_KAFKA"), os.environ.get("BRIDGE_TEST_REGISTRY")
    if all(named):
        yield Stack(*named)  # type: ignore[arg-type]
    elif docker_answers():
        yield from containers()
    else:
        yield from jvm_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def registry(stack: Stack) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": stack.registry_url, "timeout": 10}) as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the session (tests/support/postgres.py); each test makes its own database."""
    found = binaries()
    if found is None:
        pytest.skip(
            "no PostgreSQL binaries: initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin "
            "(apt-get install postgresql; .ci/run does)"
        )
    with postgres_server(found) as server:
        yield server


@pytest.fixture(scope="session")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    """stack.sh up --secure on free ports (SASL_SSL/SCRAM, mutual TLS, the registry over HTTPS), for the session."""
    interrupt_on_sigterm()
    yield from secure_stack(tmp_path_factory.mktemp("secure-stack"))
