"""Reliability scenarios: real brokers and registry, failures injected by signal; one table at the end."""

from __future__ import annotations

import pytest

from tests.support.reliability import ROWS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.write_sep("=", "reliability: every 2xx'd event must be in Kafka (lost = 0)")
        terminalreporter.write_line(table(ROWS))
