"""Integration fixtures: the real stack (tests/support/stack.py says where it comes from), a bridge, a registry."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from tests.support.stack import (
    SECRETS,
    Bridge,
    Stack,
    containers,
    docker_answers,
    interrupt_on_sigterm,
    jvm_stack,
    start_bridge,
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    interrupt_on_sigterm()
    named = os.environ.get("BRIDGE_TEST_KAFKA"), os.environ.get("BRIDGE_TEST_REGISTRY")
    if all(named):
        yield Stack(*named)  # type: ignore[arg-type]
    elif docker_answers():
        yield from containers()
    else:
        yield from jvm_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """A Lettermint source with two secrets (rotation), served by a real `bridge serve`."""
    sources = """
        - name: lettermint-it
          provider: lettermint
          secrets: ["${IT_SECRET_CURRENT}", "${IT_SECRET_PREVIOUS}"]
    """
    env = {"IT_SECRET_CURRENT": SECRETS[0], "IT_SECRET_PREVIOUS": SECRETS[1]}
    with start_bridge(stack, tmp_path_factory.mktemp("bridge"), sources, env) as (url, prefix, config):
        yield Bridge(url, prefix, config, stack, source="lettermint-it", secrets=SECRETS)


@pytest.fixture(scope="session")
def registry(stack: Stack) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient({"url": stack.registry_url, "timeout": 10}) as client:
        yield client
