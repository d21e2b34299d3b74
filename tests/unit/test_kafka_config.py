"""Kafka and registry client settings: security_protocol, sasl, tls and the registry's mapped onto the clients'
properties, kafka.producer checked against librdkafka's property names."""

from __future__ import annotations

from typing import Any

import confluent_kafka
import pytest
import yaml
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from bridge import config, kafka_config
from bridge.app import registry_client
from bridge.errors import ConfigError
from bridge.kafka_properties import LIBRDKAFKA_VERSION, PROPERTIES
from bridge.publisher import KafkaPublisher, client_config
from bridge.reader import consumer
from tests.support.fakes import MINIMAL_YAML


def parse(kafka: dict[str, Any] | None = None, registry: dict[str, Any] | None = None) -> config.Settings:
    tree: dict[str, Any] = yaml.safe_load(MINIMAL_YAML)
    tree["kafka"] = {"bootstrap_servers": "127.0.0.1:1", **(kafka or {})}
    tree["schema_registry"] = {"url": "https://registry.example:8081", **(registry or {})}
    return config.parse(yaml.safe_dump(tree), environ={})


def refused(match: str, kafka: dict[str, Any] | None = None, registry: dict[str, Any] | None = None) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(kafka, registry)


def test_the_committed_property_table_is_the_bundled_librdkafkas() -> None:
    assert confluent_kafka.libversion()[0] == LIBRDKAFKA_VERSION, "regenerate: python -m bridge.kafka_config"
    assert kafka_config.table(kafka_config.bundled_table()) == PROPERTIES


def test_sasl_scram_over_tls_maps_onto_librdkafka_properties() -> None:
    kafka = parse(
        {
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "bridge", "password": "pw"},
            "tls": {"ca": "/etc/kafka/ca.pem"},
            "producer": {"compression.type": "zstd"},
        }
    ).kafka
    properties = kafka_config.plain(kafka.producer)
    assert properties == {
        "compression.type": "zstd",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bridge",
        "sasl.password": "pw",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert "pw" not in repr(kafka)


def test_mutual_tls_maps_onto_the_ssl_properties_and_can_skip_the_hostname_check() -> None:
    tls = {"ca": "ca.pem", "certificate": "client.pem", "key": "client.key", "verify_hostname": False}
    assert parse({"tls": tls}).kafka.producer == {
        "security.protocol": "SSL",
        "ssl.ca.location": "ca.pem",
        "ssl.certificate.location": "client.pem",
        "ssl.key.location": "client.key",
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_plaintext_adds_nothing_and_an_explicit_protocol_is_kept() -> None:
    assert parse().kafka.producer == {}
    assert (
        parse(
            {"security_protocol": "SASL_PLAINTEXT", "sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"}}
        ).kafka.producer["security.protocol"]
        == "SASL_PLAINTEXT"
    )


@pytest.mark.parametrize(
    ("kafka", "match"),
    [
        (
            {"producer": {"sasl.passwrod": "x"}},
            r"kafka\.producer: unknown librdkafka property sasl\.passwrod \(did you mean sasl\.password\?\)",
        ),
        ({"producer": {"no.such.thing": 1}}, r"kafka\.producer: unknown librdkafka property no\.such\.thing"),
        ({"producer": {"error_cb": "x"}}, r"kafka\.producer: unknown librdkafka property error_cb"),
        ({"producer": {"group.id": "g"}}, r"kafka\.producer: group\.id is a consumer property"),
        ({"producer": {"acks": 1}}, r"kafka\.producer: acks cannot be overridden"),
        ({"sasl": {"mechanism": "SCRAM-SHA-512"}}, r"kafka\.sasl: SCRAM-SHA-512 needs username and password"),
        ({"sasl": {"mechanism": "SCRAM-SHA-1", "username": "u", "password": "p"}}, r"kafka\.sasl\.mechanism"),
        ({"tls": {"certificate": "c.pem"}}, r"kafka\.tls: certificate and key go together"),
        ({"tls": {"ca": "c.pem", "verify": False}}, r"kafka\.tls\.verify: unknown key"),
        (
            {"security_protocol": "SSL", "sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"}},
            r"kafka\.sasl: not used with security_protocol SSL",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "tls": {"ca": "c"}},
            r"kafka\.tls: not used with security_protocol SASL_PLAINTEXT",
        ),
        ({"security_protocol": "SASL_SSL"}, r"kafka\.sasl: security_protocol SASL_SSL needs a sasl mechanism"),
        ({"security_protocol": "TLS"}, r"kafka\.security_protocol"),
        ({"tls": {"ca": "c"}, "producer": {"ssl.ca.location": "d"}}, r"kafka\.producer: ssl\.ca\.location come from"),
    ],
)
def test_a_wrong_kafka_setting_is_an_error_naming_its_key(kafka: dict[str, Any], match: str) -> None:
    refused(match, kafka)


def test_the_pass_through_still_takes_security_settings_of_its_own() -> None:
    """Configurations written before kafka.sasl/tls existed keep working."""
    producer = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"}
    assert parse({"producer": producer}).kafka.producer == producer


def test_admin_clients_and_consumers_share_the_security_settings_not_the_producer_only_ones() -> None:
    kafka = parse(
        {
            "sasl": {"mechanism": "PLAIN", "username": "u", "password": "p"},
            "producer": {"linger.ms": 5, "enable.gapless.guarantee": True, "client.id": "bridge"},
        }
    ).kafka
    shared = client_config({"bootstrap.servers": kafka.bootstrap_servers, **kafka.producer})
    assert shared["sasl.password"] == "p" and shared["client.id"] == "bridge"
    assert "linger.ms" not in shared and "enable.gapless.guarantee" not in shared
    # librdkafka itself takes each: no "unknown property" and no consumer-or-producer-only complaints.
    AdminClient(shared)
    consumer(kafka, "g").close()
    Consumer({**shared, "group.id": "g"}).close()
    KafkaPublisher(kafka.bootstrap_servers, kafka.producer, timeout=0.5)


def test_the_publisher_builds_its_producer_from_the_derived_properties() -> None:
    kafka = parse({"sasl": {"mechanism": "SCRAM-SHA-256", "username": "u", "password": "p"}}).kafka
    publisher = KafkaPublisher(kafka.bootstrap_servers, kafka.producer, timeout=0.5)
    assert publisher._config["sasl.mechanism"] == "SCRAM-SHA-256"
    assert publisher._config["sasl.password"] == "p"


def test_registry_tls_and_basic_auth_map_onto_the_registry_clients_settings() -> None:
    registry = parse(
        registry={"tls": {"ca": "ca.pem", "certificate": "c.pem", "key": "c.key"}, "basic_auth": "key:secret"}
    ).schema_registry
    assert registry.client_config() == {
        "ssl.ca.location": "ca.pem",
        "ssl.certificate.location": "c.pem",
        "ssl.key.location": "c.key",
        "basic.auth.user.info": "key:secret",
    }
    user = parse(registry={"basic_auth": {"username": "u", "password": "p:w"}}).schema_registry
    assert user.client_config() == {"basic.auth.user.info": "u:p:w"}
    assert "secret" not in repr(registry)


def test_a_registry_bearer_token_is_confluent_kafkas_static_token() -> None:
    settings = parse(registry={"bearer_token": "t0k", "logical_cluster": "lsrc-1", "identity_pool": "pool-2"})
    assert settings.schema_registry.client_config() == {
        "bearer.auth.credentials.source": "STATIC_TOKEN",
        "bearer.auth.token": "t0k",
        "bearer.auth.logical.cluster": "lsrc-1",
        "bearer.auth.identity.pool.id": "pool-2",
    }
    registry_client(parse(registry={"bearer_token": "t0k"})).close()  # the client takes it as it is


@pytest.mark.parametrize(
    ("registry", "match"),
    [
        ({"basic_auth": "no-colon"}, r"schema_registry\.basic_auth"),
        ({"basic_auth": "u:p", "bearer_token": "t"}, r"schema_registry\.basic_auth: and bearer_token both set"),
        ({"tls": {"key": "k.pem"}}, r"schema_registry\.tls\.key: needs certificate"),
        ({"tls": {"ca": "c"}, "client": {"ssl.ca.location": "d"}}, r"schema_registry\.client: ssl\.ca\.location"),
    ],
)
def test_a_wrong_registry_setting_is_an_error_naming_its_key(registry: dict[str, Any], match: str) -> None:
    refused(match, registry=registry)
