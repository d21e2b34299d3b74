"""`bridge schemas` against the real registry: register, list, show, and `check` passing, rejecting an incompatible
change with a message that names the field, and accepting a compatible one. Each test has its own topic prefix."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from bridge.avro import SCHEMAS_DIR
from bridge.cli import EXIT_FAILED, EXIT_INCOMPATIBLE
from bridge.events import EVENT_TYPES
from tests.support.stack import Stack, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def config(stack: Stack, tmp_path: Path) -> tuple[Path, str]:
    """A configuration on a fresh prefix, so these subjects are no other test's."""
    prefix = f"it-schemas-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "bridge.yaml"
    path.write_text(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "{prefix}"}}
sources:
  - {{name: lm, provider: lettermint, secrets: ["whsec_x"]}}
""",
        encoding="utf-8",
    )
    return path, prefix


def schemas(config: tuple[Path, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(config[0], {}, "schemas", *args)


def edited(tmp_path: Path, event_type: str, change: dict[str, Any]) -> Path:
    """A copy of schemas/ with one schema's fields replaced (a dict), removed (None) or appended (a new name)."""
    folder = tmp_path / f"schemas-{uuid.uuid4().hex[:6]}"
    shutil.copytree(SCHEMAS_DIR, folder)
    schema = json.loads((folder / f"{event_type}.avsc").read_text())
    fields = {field["name"]: field for field in schema["fields"]}
    for name, field in change.items():
        if field is None:
            del fields[name]
        else:
            fields[name] = {"name": name, **field}
    schema["fields"] = list(fields.values())
    (folder / f"{event_type}.avsc").write_text(json.dumps(schema))
    return folder


def test_list_before_and_after_register(config: tuple[Path, str]) -> None:
    prefix = config[1]
    before = schemas(config, "list")
    assert before.returncode == 0, before.stderr
    assert before.stdout.count(": not registered\n") == len(EVENT_TYPES)
    registered = schemas(config, "register")
    assert registered.returncode == 0, registered.stderr
    ids = dict(line.split(": id ") for line in registered.stdout.splitlines())
    assert set(ids) == {f"{prefix}.{event_type}-value" for event_type in EVENT_TYPES}
    after = schemas(config, "list")
    assert after.returncode == 0, after.stderr
    subject = f"{prefix}.message.delivered-value"
    assert f"{subject}: version 1, id {ids[subject]}, local schema matches\n" in after.stdout
    assert "not registered" not in after.stdout


def test_show_prints_the_registered_schema_and_refuses_a_missing_version(config: tuple[Path, str]) -> None:
    assert schemas(config, "register").returncode == 0
    shown = schemas(config, "show", "message.delivered")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads((SCHEMAS_DIR / "message.delivered.avsc").read_text())
    assert shown.stdout.startswith('{\n  "type": "record"')
    by_subject = schemas(config, "show", f"{config[1]}.message.delivered-value", "--version", "1")
    assert by_subject.stdout == shown.stdout
    missing = schemas(config, "show", "message.delivered", "--version", "2")
    assert missing.returncode == EXIT_FAILED
    assert f"version 2 of {config[1]}.message.delivered-value: not registered" in missing.stderr


def test_check_of_unregistered_subjects_passes(config: tuple[Path, str]) -> None:
    checked = schemas(config, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("not registered yet") == len(EVENT_TYPES)


def test_check_passes_after_register_and_rejects_an_incompatible_change_naming_the_field(
    config: tuple[Path, str], tmp_path: Path
) -> None:
    prefix = config[1]
    assert schemas(config, "register").returncode == 0
    unchanged = schemas(config, "check")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert f"all {len(EVENT_TYPES)} schemas compatible" in unchanged.stdout

    retyped = schemas(
        config, "check", "--schemas", str(edited(tmp_path, "message.delivered", {"attempt": {"type": "string"}}))
    )
    assert retyped.returncode == EXIT_INCOMPATIBLE, retyped.stdout + retyped.stderr
    assert f"{prefix}.message.delivered-value: incompatible with version 1 (id " in retyped.stdout
    assert 'field `attempt` type changed from ["null", "int"] to "string"' in retyped.stdout.splitlines()[2]
    assert f"incompatible: {prefix}.message.delivered-value" in retyped.stderr
    assert f"{prefix}.message.sent-value: compatible with version 1" in retyped.stdout  # the others are checked too

    required = edited(tmp_path, "message.delivered", {"campaign": {"type": "string"}})
    added = schemas(config, "check", "--schemas", str(required))
    assert added.returncode == EXIT_INCOMPATIBLE, added.stdout + added.stderr
    assert "(BACKWARD): field `campaign` added without a default" in added.stdout


def test_check_accepts_compatible_changes_and_shows_them(config: tuple[Path, str], tmp_path: Path) -> None:
    assert schemas(config, "register").returncode == 0
    optional = {"campaign": {"type": ["null", "string"], "default": None}, "recipient": None}
    checked = schemas(config, "check", "--schemas", str(edited(tmp_path, "message.delivered", optional)))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith(f"{config[1]}.message.delivered-value:")))
    assert lines[at].endswith("(BACKWARD)") and ": compatible with version 1 (id " in lines[at]
    # Under BACKWARD a removed field is fine: new readers ignore it in old records.
    assert lines[at + 1 : at + 3] == [
        "  - field `recipient` removed (it had default null)",
        "  - field `campaign` added with default null",
    ]
    listed = schemas(config, "list", "--schemas", str(edited(tmp_path, "message.delivered", optional)))
    assert f"{config[1]}.message.delivered-value: version 1, id " in listed.stdout
    assert "local schema differs (see `bridge schemas check`)" in listed.stdout
