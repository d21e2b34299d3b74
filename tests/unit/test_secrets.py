"""Secrets from files: `${file:/path}` anywhere, and the rotating ones re-read when the file changes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml

from bridge import config
from bridge.errors import ConfigError
from bridge.publisher import KafkaPublisher
from bridge.secrets import CHECK_SECONDS, FileSecret, lines
from tests.support.fakes import MINIMAL_YAML


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replace(path: Path, text: str) -> None:
    """As Kubernetes updates a mounted Secret: the new content under a new inode, renamed over the old."""
    new = path.with_suffix(".new")
    new.write_text(text, encoding="utf-8")
    os.replace(new, path)


def parse(tree_changes: dict[str, object], environ: dict[str, str] | None = None) -> config.Settings:
    tree = {**yaml.safe_load(MINIMAL_YAML), **tree_changes}
    return config.parse(yaml.safe_dump(tree), environ=environ or {})


def test_a_file_reference_is_the_files_content_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "servers").write_text("kafka-0:9093,kafka-1:9093\n", encoding="utf-8")
    settings = parse({"kafka": {"bootstrap_servers": f"${{file:{tmp_path}/servers}}"}})
    assert settings.kafka.bootstrap_servers == "kafka-0:9093,kafka-1:9093"


def test_file_and_environment_references_mix_in_one_value(tmp_path: Path) -> None:
    (tmp_path / "host").write_text("registry.internal", encoding="utf-8")
    url = f"https://${{file:{tmp_path}/host}}:${{PORT:-8081}}/apis/ccompat/v7"
    assert (
        parse({"schema_registry": {"url": url}}).schema_registry.url == "https://registry.internal:8081/apis/ccompat/v7"
    )


def test_a_missing_file_is_an_error_naming_the_key_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=rf"kafka\.bootstrap_servers: cannot read {missing}: No such file"):
        parse({"kafka": {"bootstrap_servers": f"${{file:{missing}}}"}})
    source = {"name": "lm", "provider": "lettermint", "secrets": [f"${{file:{missing}}}"]}
    with pytest.raises(ConfigError, match=rf"sources\.0\.secrets\.0: .*cannot read {missing}"):
        parse({"sources": [source]})


def test_an_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    source = {"name": "lm", "provider": "lettermint", "secrets": [f"${{file:{tmp_path}/empty}}"]}
    with pytest.raises(ConfigError, match=r"sources\.0\.secrets\.0: .*is empty"):
        parse({"sources": [source]})


def test_a_webhook_secret_file_gives_one_secret_a_line_and_follows_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "lettermint"
    secret.write_text("whsec_old\n", encoding="utf-8")
    source = {"name": "lm", "provider": "lettermint", "secrets": [f"${{file:{secret}}}", "whsec_literal"]}
    [settings] = parse({"sources": [source]}).sources
    assert isinstance(settings.secrets[0], FileSecret)
    assert settings.secret_values() == ["whsec_old", "whsec_literal"]
    assert "whsec_old" not in repr(settings)


def test_a_file_secret_is_read_again_when_the_file_changes_at_most_once_a_second(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old\n", encoding="utf-8")
    clock = Clock()
    secret = FileSecret(str(path), clock=clock)
    replace(path, "old\nnew\n")
    assert lines(secret) == ["old"]  # within the second: not looked at
    clock.now += CHECK_SECONDS
    assert lines(secret) == ["old", "new"]  # the overlap: both
    replace(path, "new\n")
    clock.now += CHECK_SECONDS
    assert lines(secret) == ["new"]


def test_a_file_that_vanishes_or_empties_keeps_the_last_value_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret"
    path.write_text("kept", encoding="utf-8")
    clock = Clock()
    secret = FileSecret(str(path), clock=clock)
    path.unlink()
    clock.now += CHECK_SECONDS
    with caplog.at_level(logging.ERROR, logger="bridge.secrets"):
        assert secret.get_secret_value() == "kept"
        clock.now += CHECK_SECONDS
        assert secret.get_secret_value() == "kept"
    assert [record.message for record in caplog.records] == [
        f"secret file {path} cannot be read (cannot read {path}: No such file or directory); keeping its last value"
    ]
    path.write_text("  \n", encoding="utf-8")
    clock.now += CHECK_SECONDS
    assert secret.get_secret_value() == "kept"


def test_the_kafka_password_from_a_file_reaches_the_producer_and_follows_the_file(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("first\n", encoding="utf-8")
    sasl = {"mechanism": "SCRAM-SHA-512", "username": "bridge", "password": f"${{file:{password}}}"}
    kafka = parse({"kafka": {"bootstrap_servers": "127.0.0.1:1", "sasl": sasl}}).kafka
    assert isinstance(kafka.sasl and kafka.sasl.password, FileSecret)
    publisher = KafkaPublisher(kafka.bootstrap_servers, kafka.producer, timeout=0.5)
    assert publisher._config["sasl.password"] == "first"
    replace(password, "second\n")
    assert publisher._password is not None
    publisher._password._checked -= CHECK_SECONDS  # a second later
    publisher._rotate_password()  # what the poll thread does after each poll
    assert publisher._config["sasl.password"] == "second"


def test_a_file_reference_elsewhere_in_sasl_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "user").write_text("bridge\n", encoding="utf-8")
    sasl = {"mechanism": "PLAIN", "username": f"${{file:{tmp_path}/user}}", "password": "p"}
    assert parse({"kafka": {"bootstrap_servers": "b:9092", "sasl": sasl}}).kafka.producer["sasl.username"] == "bridge"
