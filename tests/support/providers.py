"""What the provider unit tests share: raw headers, the recorded fixture bodies, the Avro schema check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastavro.validation import validate

from bridge import avro
from bridge.errors import StaleTimestamp
from bridge.events import CanonicalEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCHEMAS = avro.load_schemas()

Pairs = list[tuple[bytes, bytes]]

# (tolerance_seconds, clock skew, accepted): the edges of a source's timestamp tolerance.
TOLERANCES = [(0, 0, True), (0, 1, False), (10, -10, True), (10, 11, False), (3600, -3600, True), (3600, 3601, False)]


def raw(*pairs: tuple[str, str], encoding: str = "latin-1") -> Pairs:
    """ASGI-style raw headers (lower-case names), duplicates kept; values encoded with `encoding`."""
    return [(name.lower().encode("latin-1"), value.encode(encoding)) for name, value in pairs]


def fixture_files(provider: str) -> list[Path]:
    """The recorded bodies in tests/fixtures/<provider>/, in name order."""
    return sorted((FIXTURES / provider).glob("*.json"))


def file_name(path: Path) -> str:
    """A fixture's parametrize id: its file name."""
    return path.name


def fits_schema(event: CanonicalEvent) -> bool:
    """The event's Avro record validates against its event type's schema (raises where it does not)."""
    return bool(validate(avro.to_record(event), SCHEMAS[event.event_type].parsed, raise_errors=True))


def is_fresh(check: Callable[[], object]) -> bool:
    """False where `check` raises StaleTimestamp, True where it returns; other errors propagate."""
    try:
        check()
    except StaleTimestamp:
        return False
    return True
