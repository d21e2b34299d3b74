"""settings: the YAML configuration, `${ENV}` substitution, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bridge import config
from bridge.errors import ConfigError
from bridge.settings import PROVIDER_TIMEOUT_SECONDS
from tests.support.fakes import MINIMAL_YAML, SECRET

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "local" / "bridge.yaml"


def parse(tree: dict[str, object], environ: dict[str, str] | None = None) -> config.Settings:
    return config.parse(yaml.safe_dump(tree), environ={} if environ is None else environ)


def minimal(**overrides: object) -> dict[str, object]:
    tree: dict[str, object] = yaml.safe_load(MINIMAL_YAML)
    return {**tree, **overrides}


def source(**overrides: object) -> dict[str, object]:
    return {"name": "lm", "provider": "lettermint", "secrets": ["s3cret"], **overrides}


def test_example_config_parses_with_its_defaults() -> None:
    settings = config.parse(EXAMPLE.read_text(encoding="utf-8"), environ={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.schema_registry.url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert [(s.name, s.provider) for s in settings.sources] == [("lettermint-transactional", "lettermint")]
    assert settings.sources[0].secret_values() == ["whsec_local-development-secret"]


def test_example_config_takes_values_from_the_environment() -> None:
    environ = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9093", "LETTERMINT_WEBHOOK_SECRET": "whsec_env"}
    settings = config.parse(EXAMPLE.read_text(encoding="utf-8"), environ=environ)
    assert settings.kafka.bootstrap_servers == "kafka:9093"
    assert settings.sources[0].secret_values() == ["whsec_env"]


def test_minimal_config_gets_defaults() -> None:
    settings = config.parse(MINIMAL_YAML, environ={})
    assert settings.kafka.producer == {}
    assert settings.schema_registry.auto_register is True
    assert (settings.topics.prefix, settings.topics.create) == ("webhooks", True)
    assert (settings.server.port, settings.server.max_body_bytes) == (8000, 1024 * 1024)
    assert settings.server.publish_timeout_seconds < PROVIDER_TIMEOUT_SECONDS
    only = settings.sources[0]
    assert (only.name, only.provider, only.tolerance_seconds) == ("lm", "lettermint", 300)
    assert only.secret_values() == [SECRET]


def test_settings_are_frozen() -> None:
    settings = config.parse(MINIMAL_YAML, environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${HOST}", {"HOST": "kafka:9092"}, "kafka:9092"),
        ("${HOST}:${PORT}", {"HOST": "kafka", "PORT": "9093"}, "kafka:9093"),
        ("${HOST:-localhost:9092}", {}, "localhost:9092"),
        ("${HOST:-localhost:9092}", {"HOST": "kafka:9092"}, "kafka:9092"),
        ("${HOST:-}x", {}, "x"),
        ("$HOST", {"HOST": "kafka"}, "$HOST"),
    ],
)
def test_environment_substitution(text: str, environ: dict[str, str], expected: str) -> None:
    settings = parse(minimal(kafka={"bootstrap_servers": text}), environ)
    assert settings.kafka.bootstrap_servers == expected


def test_substituted_numbers_are_cast() -> None:
    settings = parse(minimal(server={"port": "${PORT:-8080}"}))
    assert settings.server.port == 8080


def test_unset_variable_names_the_key_and_the_variable() -> None:
    tree = minimal(sources=[source(secrets=["${LETTERMINT_SECRET}"])])
    with pytest.raises(ConfigError, match=r"sources\.0\.secrets\.0: environment variable LETTERMINT_SECRET is not set"):
        parse(tree)


@pytest.mark.parametrize(
    ("tree", "key"),
    [
        (minimal(kafka={"bootstrap_server": "k:9092"}), "kafka.bootstrap_server"),
        ({"source": [source()], **{k: v for k, v in minimal().items() if k != "sources"}}, "source"),
        (minimal(sources=[source(secret="x")]), "sources.0.secret"),
        (minimal(server={"max_body": 10}), "server.max_body"),
    ],
)
def test_unknown_keys_are_rejected_by_name(tree: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"(; |: ){re.escape(key)}: unknown key"):
        parse(tree)


def test_missing_key_is_named() -> None:
    tree = minimal()
    del tree["kafka"]
    with pytest.raises(ConfigError, match=r"kafka: Field required"):
        parse(tree)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"sources\.0\.provider: unknown provider 'sendgridd'; known: lettermint"):
        parse(minimal(sources=[source(provider="sendgridd")]))


def test_duplicate_source_names() -> None:
    with pytest.raises(ConfigError, match=r"sources: source names must be unique; repeated: lm"):
        parse(minimal(sources=[source(), source(secrets=["other"])]))


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ([], r"sources\.0\.secrets: this provider needs at least one secret"),
        ([""], r"sources\.0\.secrets: a secret is empty"),
        (["ok", "${UNSET_SECRET:-}"], r"sources\.0\.secrets: a secret is empty"),
    ],
)
def test_empty_secrets(secrets: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(minimal(sources=[source(secrets=secrets)]))


def test_no_sources() -> None:
    with pytest.raises(ConfigError, match=r"sources: List should have at least 1 item"):
        parse(minimal(sources=[]))


@pytest.mark.parametrize("name", ["Lettermint", "a/b", "", "-lm", "lm.prod", "a" * 64])
def test_bad_source_names(name: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\.0\.name: a source name takes lower-case letters"):
        parse(minimal(sources=[source(name=name)]))


@pytest.mark.parametrize("name", ["lm", "lettermint-transactional", "0_a", "a" * 63])
def test_good_source_names(name: str) -> None:
    assert parse(minimal(sources=[source(name=name)])).sources[0].name == name


@pytest.mark.parametrize("key", ["acks", "request.required.acks", "enable.idempotence", "bootstrap.servers"])
def test_producer_cannot_override_the_guarantee(key: str) -> None:
    tree = minimal(kafka={"bootstrap_servers": "k:9092", "producer": {key: "1", "compression.type": "zstd"}})
    with pytest.raises(ConfigError, match=rf"kafka\.producer: {re.escape(key)} cannot be overridden"):
        parse(tree)


def test_producer_takes_other_settings() -> None:
    tree = minimal(kafka={"bootstrap_servers": "k:9092", "producer": {"compression.type": "zstd", "linger.ms": 20}})
    assert parse(tree).kafka.producer == {"compression.type": "zstd", "linger.ms": 20}


@pytest.mark.parametrize(("timeout", "valid"), [(29.9, True), (30, False), (31, False), (0, False)])
def test_publish_timeout_below_the_provider_timeout(timeout: float, valid: bool) -> None:
    tree = minimal(server={"publish_timeout_seconds": timeout})
    if valid:
        assert parse(tree).server.publish_timeout_seconds == timeout
    else:
        with pytest.raises(ConfigError, match=r"server\.publish_timeout_seconds: Input should be"):
            parse(tree)


@pytest.mark.parametrize("prefix", ["", "web hooks", "a/b"])
def test_bad_topic_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"topics\.prefix: a topic prefix takes"):
        parse(minimal(topics={"prefix": prefix}))


@pytest.mark.parametrize(
    ("text", "message"), [("kafka: [", "not valid YAML"), ("- a\n- b\n", "top level must be a mapping")]
)
def test_not_a_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.parse(text, environ={})


def test_load_without_a_path_or_environment() -> None:
    with pytest.raises(ConfigError, match=r"no configuration: pass --config FILE or set BRIDGE_CONFIG"):
        config.load(None, environ={})


def test_load_reads_the_file_named_by_bridge_config(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(MINIMAL_YAML, encoding="utf-8")
    assert config.load(None, environ={"BRIDGE_CONFIG": str(path)}).sources[0].name == "lm"


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"cannot read {missing}"):
        config.load(str(missing), environ={})


def test_secrets_are_not_shown() -> None:
    settings = config.parse(MINIMAL_YAML, environ={})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()
    assert settings.sources[0].secret_values() == [SECRET]


def test_config_errors_do_not_echo_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(minimal(sources=[source(secrets=["s3cret", 7])]))
    assert "sources.0.secrets.1" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_management_port_must_differ_from_the_public_one() -> None:
    assert parse(minimal(server={"port": 8000, "management_port": 9090})).server.management_port == 9090
    with pytest.raises(ConfigError, match=r"server\.management_port: 8000 is `port` too"):
        parse(minimal(server={"port": 8000, "management_port": 8000}))
