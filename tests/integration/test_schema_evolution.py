"""Schemas evolve BACKWARD-compatibly: the real registry accepts today's schemas over the released ones."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from bridge.avro import COMPATIBILITY, load_schemas

pytestmark = pytest.mark.integration
RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "schemas"
CURRENT = load_schemas()


def released_versions() -> list[tuple[str, str]]:
    """(release, event type) for every schema kept in tests/fixtures/schemas/<release>/."""
    return sorted((path.parent.name, path.stem) for path in RELEASED.glob("*/*.avsc"))


@pytest.mark.parametrize(("release", "event_type"), released_versions())
def test_the_current_schema_is_accepted_over_the_released_one(
    registry: SchemaRegistryClient, release: str, event_type: str
) -> None:
    subject = f"evolution-{uuid.uuid4().hex[:8]}.{event_type}-value"
    registry.set_compatibility(subject, COMPATIBILITY)
    old = (RELEASED / release / f"{event_type}.avsc").read_text(encoding="utf-8")
    registry.register_schema(subject, Schema(old, "AVRO"))
    registry.register_schema(subject, Schema(CURRENT[event_type].text, "AVRO"))
    versions = registry.get_versions(subject)
    changed = json.loads(old) != json.loads(CURRENT[event_type].text)
    assert len(versions) == (2 if changed else 1)
