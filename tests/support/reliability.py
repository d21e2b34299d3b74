"""The reliability table: each failure scenario records one row; the session prints them together."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

COLUMNS = ("scenario", "sent", "2xx", "non-2xx by code", "found in Kafka", "lost", "duplicates", "recovery")


@dataclass
class Row:
    """One scenario's outcome. `lost` is 2xx'd event ids not found in Kafka afterwards: must be 0."""

    scenario: str
    sent: int
    ok: int
    refused: Counter[str] = field(default_factory=Counter)  # non-2xx answers by code ("503", "refused", ...)
    found: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery_seconds: float | None = None

    def cells(self) -> tuple[str, ...]:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.refused.items())) or "-"
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        return (self.scenario, str(self.sent), str(self.ok), codes, str(self.found), str(self.lost),
                str(self.duplicates), recovery)  # fmt: skip


ROWS: list[Row] = []


def record(row: Row) -> Row:
    ROWS.append(row)
    return row


def table(rows: list[Row]) -> str:
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[index]) for line in cells) for index in range(len(COLUMNS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])
