"""The `bridge` command's exit codes and output, without a broker or registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import EXIT_CONFIG, EXIT_FAILED, main, pretty
from tests.support.fakes import SECRET, SOURCE

CONFIG = f"""
kafka: {{bootstrap_servers: "127.0.0.1:1"}}
schema_registry: {{url: "http://127.0.0.1:1/apis/ccompat/v7"}}
server: {{port: 1}}
sources:
  - {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}", "${{SECOND_SECRET}}"]}}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SECOND_SECRET", "whsec_second")
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


def test_check_config_lists_each_source_and_route(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "check-config"]) == 0
    out = capsys.readouterr().out
    assert f"source {SOURCE}: provider lettermint, 2 secret(s), POST /webhooks/{SOURCE}" in out
    assert "webhooks.<event type>" in out


def test_a_configuration_error_exits_2_naming_the_variable(
    config: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SECOND_SECRET")
    assert main(["--config", config, "check-config"]) == EXIT_CONFIG
    assert "sources.0.secrets.1: environment variable SECOND_SECRET is not set" in capsys.readouterr().err


def test_no_configuration_at_all_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    assert main(["check-config"]) == EXIT_CONFIG
    assert "BRIDGE_CONFIG" in capsys.readouterr().err


def test_register_schemas_with_the_registry_down_exits_1(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "register-schemas"]) == EXIT_FAILED
    assert "registration failed: schema registry unreachable" in capsys.readouterr().err


def test_send_test_to_an_unknown_source_exits_2(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "send-test", "--source", "nope"]) == EXIT_CONFIG
    assert f"configured: {SOURCE}" in capsys.readouterr().err


def test_send_test_with_the_bridge_down_exits_1(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "send-test"]) == EXIT_FAILED
    assert f"POST http://127.0.0.1:1/webhooks/{SOURCE} failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["check-config", "--config", "{config}"],
        ["check-config", "--config", "{config}", "--log-level", "WARNING"],
        ["--log-level", "ERROR", "check-config", "--config", "{config}"],
        ["--config", "/nowhere.yaml", "check-config", "--config", "{config}"],  # the command's own wins
    ],
)
def test_the_common_options_go_before_or_after_the_command(
    config: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([part.format(config=config) for part in argv]) == 0
    assert f"source {SOURCE}" in capsys.readouterr().out


def test_nested_commands_take_them_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--config", "/nowhere.yaml"]) == EXIT_CONFIG
    assert main(["consumer", "report", "billing", "--config", "/nowhere.yaml"]) == EXIT_CONFIG
    assert capsys.readouterr().err.count("cannot read /nowhere.yaml") == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("bridge ")


def test_help_lists_every_command_nested_ones_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out.split("every command", 1)[1]
    for name in ("serve", "consume", "dlq list", "dlq replay", "dlq show", "consumer run", "consumer report"):
        assert f"\n  {name}  " in listed, name
    # ...each of which exists: its own --help works.
    for name in ("dlq show", "consumer report"):
        with pytest.raises(SystemExit) as exit_:
            main([*name.split(), "--help"])
        assert exit_.value.code == 0


def test_pretty_shows_a_record_for_people() -> None:
    shown = pretty(
        {
            "topic": "webhooks.message.delivered",
            "partition": 0,
            "offset": 7,
            "timestamp": "2026-12-01T10:00:00.000+00:00",
            "key": "m-1",
            "headers": {"event_id": "e-1", "source": "lm"},
            "value": {"event_id": "e-1", "recipient": "a@example.com"},
        }
    )
    assert shown.splitlines() == [
        "webhooks.message.delivered partition 0 offset 7  2026-12-01T10:00:00.000+00:00",
        "  key: m-1",
        "  headers: event_id=e-1, source=lm",
        "  {",
        '    "event_id": "e-1",',
        '    "recipient": "a@example.com"',
        "  }",
    ]


def test_check_config_says_where_the_probes_are(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "check-config"]) == 0
    assert "serving on 127.0.0.1:1; /healthz, /readyz and /metrics on it" in capsys.readouterr().out
    apart = Path(config)
    apart.write_text(CONFIG.replace("server: {port: 1}", "server: {port: 1, management_port: 9090}"), encoding="utf-8")
    assert main(["--config", config, "check-config"]) == 0
    assert "serving on 127.0.0.1:1; /healthz, /readyz and /metrics on 127.0.0.1:9090" in capsys.readouterr().out
    apart.write_text(
        CONFIG.replace("server: {port: 1}", "server: {port: 1, management_port: 9090, management_host: 10.0.0.1}"),
        encoding="utf-8",
    )
    assert main(["--config", config, "check-config"]) == 0
    assert "/healthz, /readyz and /metrics on 10.0.0.1:9090" in capsys.readouterr().out


def test_serve_on_the_management_port_exits_2(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    Path(config).write_text(CONFIG.replace("server: {port: 1}", "server: {port: 1, management_port: 9090}"))
    assert main(["serve", "--config", config, "--port", "9090"]) == EXIT_CONFIG
    assert "--port 9090 is server.management_port too" in capsys.readouterr().err


PARTIAL = """
kafka:
  bootstrap_servers: "127.0.0.1:1"
  sasl: {mechanism: SCRAM-SHA-512, username: bridge, password: "${file:/nonexistent/kafka-password}"}
schema_registry: {url: "http://127.0.0.1:1", basic_auth: {username: u, password: "${NOT_SET_ANYWHERE}"}}
sources:
  - {name: lm, provider: lettermint, secrets: ["${file:/nonexistent/webhook-secret}"]}
"""


def test_commands_that_need_part_of_the_configuration_warn_about_what_they_cannot_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(PARTIAL, encoding="utf-8")
    assert main(["--config", str(path), "topics", "render", "--strimzi"]) == 0
    captured = capsys.readouterr()
    assert "kind: KafkaUser" in captured.out
    for key in ("kafka.sasl.password", "schema_registry.basic_auth.password", "sources.0.secrets.0"):
        assert f"configuration: {key}: " in captured.err, key
    # What serves or checks the configuration still refuses it whole.
    assert main(["--config", str(path), "check-config"]) == EXIT_CONFIG
    assert "configuration error: " in capsys.readouterr().err
