"""The benchmark's smoke (`python -m benchmarks --smoke`) on the test stack, so that `make bench` cannot rot.

It checks that the harness runs end to end and that its report holds together, never a number's size:
timing belongs to the benchmark, not to a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.integration

TARGETS = ("ceiling", "bridge", "producer")


def test_the_benchmark_smoke_measures_every_target_and_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk not installed (apt install wrk)")
    env = {
        **os.environ,
        "BRIDGE_TEST_KAFKA": stack.bootstrap_servers,
        "BRIDGE_TEST_REGISTRY": stack.registry_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    [results] = tmp_path.glob("*.json")
    report = json.loads(results.read_text())
    summary = report["summary"]["targets"]
    for target in TARGETS:
        assert summary[target]["requests_per_s"] > 0, target
        assert summary[target]["cpu_s"] > 0, target
        assert summary[target]["requests_per_cpu_s"] > 0, target
        assert summary[target]["fixed"], f"{target} has no fixed-rate point"
    assert report["summary"]["ratios"]["bridge/ceiling requests_per_s"] > 0
    assert report["summary"]["ratios"]["bridge/ceiling requests_per_cpu_s"] > 0
    for target, count in report["kafka"].items():
        assert count["records"] > 0, target
        assert count["shortfall"] == 0, f"{target}: {count}"
    assert {run["target"] for run in report["runs"]} >= set(TARGETS)
    assert all(run["wrk_cpu_s"] > 0 for run in report["runs"])
    assert results.with_suffix(".md").exists()
    assert "| bridge |" in results.with_suffix(".md").read_text()
    assert "| target | requests/s |" in result.stdout
