"""`bridge schemas`: what needs no registry (local schemas, a misnamed directory), and a registry that is down."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bridge.avro import SCHEMAS_DIR
from bridge.cli import EXIT_CONFIG, EXIT_FAILED, main

CONFIG = """
kafka: {bootstrap_servers: "127.0.0.1:1"}
schema_registry: {url: "http://127.0.0.1:1/apis/ccompat/v7"}
topics: {prefix: acme}
sources:
  - {name: lm, provider: lettermint, secrets: ["whsec_x"]}
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("target", ["message.delivered", "acme.message.delivered-value"])
def test_show_local_prints_the_schema_indented(config: str, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "schemas", "show", target, "--local"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads((SCHEMAS_DIR / "message.delivered.avsc").read_text())
    assert '\n  "name": "MessageDelivered",' in out


def test_show_local_of_a_foreign_subject_exits_2(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "schemas", "show", "other.message.delivered-value", "--local"]) == EXIT_CONFIG
    assert "not a subject of prefix acme" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["list", "check", "register"])
def test_the_registry_down_exits_1(config: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "schemas", command]) == EXIT_FAILED
    assert "schema registry unreachable" in capsys.readouterr().err


def test_a_misspelt_schema_file_is_refused_by_name(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    shutil.copy(SCHEMAS_DIR / "message.delivered.avsc", folder / "message.deliverd.avsc")
    assert main(["--config", config, "schemas", "check", "--schemas", str(folder)]) == EXIT_CONFIG
    assert "message.deliverd.avsc: not an event type's schema" in capsys.readouterr().err


def test_an_invalid_avro_schema_is_refused(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    (folder / "message.delivered.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": "a"}]}')
    assert main(["--config", config, "schemas", "check", "--schemas", str(folder)]) == EXIT_CONFIG
    assert "not a valid Avro schema" in capsys.readouterr().err


def test_register_schemas_is_still_a_command(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "register-schemas"]) == EXIT_FAILED
    assert "registration failed: schema registry unreachable" in capsys.readouterr().err


@pytest.mark.parametrize("local", [[], ["--local"]])
def test_show_of_an_unknown_event_type_exits_2_naming_the_known_ones(
    config: str, local: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Exit 2 before any registry is asked: the configured one (port 1) would make it exit 1.
    assert main(["--config", config, "schemas", "show", "message.nope", *local]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "unknown event type message.nope; known: message.created, message.sent, " in err
    assert "not registered" not in err


@pytest.mark.parametrize("target", ["other.message.delivered-value", "acme.message.nope-value"])
def test_show_of_a_subject_outside_the_prefix_exits_2(
    config: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", config, "schemas", "show", target]) == EXIT_CONFIG
    assert f"{target}: not a subject of prefix acme" in capsys.readouterr().err


def test_show_local_of_an_event_type_the_folder_lacks_exits_2(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    shutil.copy(SCHEMAS_DIR / "message.sent.avsc", folder)
    assert main(["--config", config, "schemas", "show", "message.delivered", "--local", "--schemas", str(folder)]) == 2
    assert f"acme.message.delivered-value: no local schema in {folder}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["list", "check", "register", "export"])
def test_a_schemas_folder_that_does_not_exist_exits_2(
    config: str, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["--config", config, "schemas", command, "--schemas", str(missing)]) == EXIT_CONFIG
    assert f"{missing}: no such folder" in capsys.readouterr().err
    afile = tmp_path / "bridge.yaml"
    assert main(["--config", config, "schemas", command, "--schemas", str(afile)]) == EXIT_CONFIG
    assert f"{afile}: not a folder" in capsys.readouterr().err
