"""Integration fixtures: a bridge on the real stack (the stack and registry fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import SECRETS, Bridge, Stack, start_bridge


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
