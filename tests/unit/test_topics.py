"""Topics as code with no broker: the topics a configuration writes, the plan against a described cluster,
its lines, the settings' checks, and the Strimzi resources."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from confluent_kafka import KafkaError
from confluent_kafka.admin import ClusterMetadata, PartitionMetadata, TopicMetadata  # type: ignore[attr-defined]

from bridge import cli, config, strimzi, topics
from bridge.errors import ConfigError
from bridge.events import EVENT_TYPES, UNMAPPED
from bridge.records import record_limit, topic_limit
from bridge.topics import AddPartitions, Alter, Create, Manual, TopicSpec, TopicState

NEEDED = topic_limit(record_limit(1024 * 1024, 16384))  # the defaults' max.message.bytes
BASE = """
kafka: {bootstrap_servers: "127.0.0.1:1"}
schema_registry: {url: "mock://unit"}
sources:
  - {name: lm, provider: lettermint, secrets: ["s"]}
"""


def settings(topics_yaml: str = "{}", kafka: str = "") -> config.Settings:
    text = BASE + f"topics: {topics_yaml}\n"
    if kafka:
        text = text.replace(
            'kafka: {bootstrap_servers: "127.0.0.1:1"}', f'kafka: {{bootstrap_servers: "127.0.0.1:1", {kafka}}}'
        )
    return config.parse(text, environ={})


def test_every_topic_the_bridge_writes_with_the_record_limit_and_broker_defaults() -> None:
    specs = topics.topic_specs(settings())
    assert [spec.name for spec in specs] == [f"webhooks.{t}" for t in EVENT_TYPES] + ["webhooks.dead-letter"]
    assert f"webhooks.{UNMAPPED}" in topics.all_topics(settings())
    assert {(s.partitions, s.replication_factor) for s in specs} == {(-1, -1)}
    assert {tuple(s.config.items()) for s in specs} == {(("max.message.bytes", str(NEEDED)),)}


def test_configured_values_and_a_per_topic_override() -> None:
    chosen = settings(
        "{prefix: p, partitions: 6, replication_factor: 3, min_insync_replicas: 2, retention_ms: 604800000,"
        f" max_message_bytes: {NEEDED + 1}, overrides: {{dead-letter: {{retention_ms: -1, partitions: 1}}}}}}"
    )
    by_name = {spec.name: spec for spec in topics.topic_specs(chosen)}
    assert by_name["p.message.delivered"] == TopicSpec(
        "p.message.delivered",
        6,
        3,
        {"max.message.bytes": str(NEEDED + 1), "min.insync.replicas": "2", "retention.ms": "604800000"},
    )
    letters = by_name["p.dead-letter"]
    assert (letters.partitions, letters.replication_factor, letters.config["retention.ms"]) == (1, 3, "-1")


@pytest.mark.parametrize(
    ("topics_yaml", "message"),
    [
        ("{overrides: {message.nope: {partitions: 2}}}", "topics.overrides: no such topic: message.nope; known:"),
        ("{partitions: 0}", "topics.partitions: at least 1, or -1 for the broker's default"),
        ("{min_insync_replicas: 0}", "topics.min_insync_replicas: at least 1, or -1"),
        (
            "{overrides: {unmapped: {replication_factor: 0}}}",
            "topics.overrides.unmapped.replication_factor: at least 1",
        ),
        ("{retention_ms: -2}", "topics.retention_ms: Input should be greater than or equal to -1"),
        ("{max_message_bytes: 1000000}", f"topics.max_message_bytes: 1000000 is below the {NEEDED} bytes"),
        (
            "{overrides: {dead-letter: {max_message_bytes: 5}}}",
            f"topics.overrides.dead-letter.max_message_bytes: 5 is below the {NEEDED} bytes",
        ),
        ("{overrides: {unmapped: {retention: 5}}}", "topics.overrides.unmapped.retention: unknown key"),
    ],
)
def test_settings_errors_name_the_key(topics_yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(topics_yaml)
    assert message in str(raised.value)


def state(name: str, partitions: int = 3, replicas: int = 1, **config: str) -> TopicState:
    return TopicState(
        name, partitions, replicas, {"max.message.bytes": str(NEEDED), "cleanup.policy": "delete", **config}
    )


def test_a_missing_topic_is_created_and_an_equal_one_unchanged() -> None:
    wanted = [
        TopicSpec("a", 3, 1, {"max.message.bytes": str(NEEDED)}),
        TopicSpec("b", -1, -1, {"max.message.bytes": "9"}),
    ]
    result = topics.plan(wanted, {"a": state("a")})
    assert result.changes == (Create(wanted[1]),)
    assert result.unchanged == ("a",)
    assert result.pending


def test_config_differences_are_alterations_and_unset_keys_are_left_alone() -> None:
    wanted = [TopicSpec("a", -1, -1, {"max.message.bytes": str(NEEDED), "retention.ms": "1209600000"})]
    result = topics.plan(wanted, {"a": state("a", **{"retention.ms": "604800000", "min.insync.replicas": "2"})})
    assert result.changes == (Alter("a", (("retention.ms", "604800000", "1209600000"),)),)
    lines = topics.render(result, {})
    assert lines == ["~ alter a: retention.ms 604800000 -> 1209600000", "Plan: 1 to alter."]


def test_partitions_grow_and_never_shrink_and_replication_is_a_manual_step() -> None:
    wanted = [TopicSpec("up", 6, 1, {}), TopicSpec("down", 2, 1, {}), TopicSpec("rf", -1, 3, {})]
    existing = {name: state(name) for name in ("up", "down", "rf")}
    result = topics.plan(wanted, existing)
    assert result.changes[0] == AddPartitions("up", 3, 6)
    assert [type(change) for change in result.changes] == [AddPartitions, Manual, Manual]
    assert "partitions 3 -> 2: Kafka cannot remove partitions" in result.manual[0].reason
    assert "replication factor 1 -> 3: needs a partition reassignment" in result.manual[1].reason
    lines = topics.render(result, {})
    assert lines[0] == "~ partitions up: 3 -> 6"
    assert lines[1].startswith("! manual down: partitions 3 -> 2")
    assert lines[-1] == "Plan: 1 to grow, 2 manual."


def test_broker_defaults_are_shown_for_minus_one_and_nothing_to_do_says_so() -> None:
    spec = TopicSpec("n", -1, 2, {"max.message.bytes": "5", "retention.ms": "-1"})
    line = topics.render(topics.plan([spec], {}), {"num.partitions": "4"})[0]
    assert line == "+ create n (partitions broker default (4), replication 2, max.message.bytes=5, retention.ms=-1)"
    assert "partitions broker default," in topics.render(topics.plan([spec], {}), {})[0]
    unchanged = topics.plan([spec], {"n": state("n", replicas=2, **{"max.message.bytes": "5", "retention.ms": "-1"})})
    assert not unchanged.pending
    assert topics.render(unchanged, {}) == ["= 1 topic(s) unchanged", "No changes: every topic is as configured."]


def target(**changes: Any) -> strimzi.Target:
    return strimzi.Target(**{"cluster": "prod", "user": "bridge", "authentication": "scram-sha-512", **changes})


def test_strimzi_topics_carry_names_sizes_configs_and_the_cluster_label() -> None:
    chosen = settings("{prefix: Hooks, partitions: 6, replication_factor: 3, min_insync_replicas: 2}")
    documents = strimzi.documents(topics.topic_specs(chosen), chosen.topics, target(namespace="kafka"))
    kafka_topics = [document for document in documents if document["kind"] == "KafkaTopic"]
    assert len(kafka_topics) == len(EVENT_TYPES) + 1
    assert {document["apiVersion"] for document in documents} == {"kafka.strimzi.io/v1beta2"}
    bounced = next(d for d in kafka_topics if d["spec"]["topicName"] == "Hooks.message.soft_bounced")
    assert bounced["metadata"] == {
        "name": "hooks.message.soft-bounced",  # a Kubernetes name: lower case, no '_'
        "namespace": "kafka",
        "labels": {"strimzi.io/cluster": "prod"},
    }
    assert bounced["spec"] == {
        "topicName": "Hooks.message.soft_bounced",
        "partitions": 6,
        "replicas": 3,
        "config": {"max.message.bytes": NEEDED, "min.insync.replicas": 2},
    }


def test_strimzi_leaves_broker_defaults_to_the_broker() -> None:
    chosen = settings()
    [first, *_] = strimzi.documents(topics.topic_specs(chosen), chosen.topics, target())
    assert set(first["spec"]) == {"topicName", "config"}
    assert "namespace" not in first["metadata"]


def acls(document: dict[str, Any]) -> list[tuple[str, str | None, str | None, tuple[str, ...]]]:
    return [
        (a["resource"]["type"], a["resource"].get("name"), a["resource"].get("patternType"), tuple(a["operations"]))
        for a in document["spec"]["authorization"]["acls"]
    ]


def test_the_user_has_exactly_the_acls_the_running_bridge_needs() -> None:
    chosen = settings("{create: false}")
    user = strimzi.documents(topics.topic_specs(chosen), chosen.topics, target())[-1]
    assert (user["kind"], user["metadata"]["name"]) == ("KafkaUser", "bridge")
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    assert user["spec"]["authorization"]["type"] == "simple"
    written = ("Write", "Describe", "DescribeConfigs")
    expected = [("topic", name, "literal", written) for name in topics.all_topics(chosen)]
    assert acls(user) == [*expected, ("cluster", None, None, ("IdempotentWrite",))]
    assert {a["host"] for a in user["spec"]["authorization"]["acls"]} == {"*"}


def test_creating_topics_adds_create_and_alter_configs_and_a_prefix_acl_is_one_rule() -> None:
    chosen = settings("{create: true}")
    user = strimzi.documents(topics.topic_specs(chosen), chosen.topics, target(prefix_acl=True))[-1]
    assert acls(user) == [
        ("topic", "webhooks.", "prefix", ("Write", "Describe", "DescribeConfigs", "Create", "AlterConfigs")),
        ("cluster", None, None, ("IdempotentWrite",)),
    ]


def test_authentication_and_user_follow_the_kafka_settings() -> None:
    scram = settings(kafka="sasl: {mechanism: SCRAM-SHA-512, username: hooks, password: pw}")
    assert (strimzi.authentication_for(scram.kafka), strimzi.user_for(scram.kafka)) == ("scram-sha-512", "hooks")
    mtls = settings(kafka="tls: {certificate: /c.pem, key: /k.pem}")
    assert (strimzi.authentication_for(mtls.kafka), strimzi.user_for(mtls.kafka)) == ("tls", strimzi.DEFAULT_USER)


def test_render_prints_yaml_documents(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(BASE + "topics: {create: false}\n", encoding="utf-8")
    status = cli.main(["--config", str(path), "topics", "render", "--strimzi", "--cluster", "c", "--user", "u"])
    assert status == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in documents] == ["KafkaTopic"] * (len(EVENT_TYPES) + 1) + ["KafkaUser"]
    assert documents[-1]["metadata"] == {"name": "u", "labels": {"strimzi.io/cluster": "c"}}


def test_render_needs_a_format_and_defaults_the_cluster(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(BASE, encoding="utf-8")
    with pytest.raises(SystemExit) as raised:
        cli.main(["--config", str(path), "topics", "render", "--cluster", "c"])
    assert raised.value.code == 2
    assert "--strimzi" in capsys.readouterr().err
    assert cli.main(["--config", str(path), "topics", "render", "--strimzi"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert {d["metadata"]["labels"]["strimzi.io/cluster"] for d in documents} == {strimzi.DEFAULT_CLUSTER}


def test_the_derived_record_limit_is_a_floor_and_a_chosen_value_exact() -> None:
    derived = {spec.name: spec for spec in topics.topic_specs(settings())}["webhooks.message.delivered"]
    assert derived.floors == {"max.message.bytes"}
    larger, smaller = str(NEEDED * 4), str(NEEDED - 1)
    kept = topics.plan([derived], {derived.name: state(derived.name, **{"max.message.bytes": larger})})
    assert (kept.changes, kept.unchanged) == ((), (derived.name,))  # never lowered
    raised = topics.plan([derived], {derived.name: state(derived.name, **{"max.message.bytes": smaller})})
    assert raised.changes == (Alter(derived.name, (("max.message.bytes", smaller, str(NEEDED)),)),)
    assert topics.plan([derived], {}).changes == (Create(derived),)  # created with the derived value
    chosen = settings(f"{{max_message_bytes: {NEEDED + 1}, overrides: {{unmapped: {{max_message_bytes: {NEEDED}}}}}}}")
    by_name = {spec.name: spec for spec in topics.topic_specs(chosen)}
    assert {spec.floors for spec in by_name.values()} == {frozenset()}
    lowered = topics.plan(
        [by_name["webhooks.unmapped"]],
        {"webhooks.unmapped": state("webhooks.unmapped", **{"max.message.bytes": larger})},
    )
    assert lowered.changes == (Alter("webhooks.unmapped", (("max.message.bytes", larger, str(NEEDED)),)),)


def metadata(**topics_found: tuple[KafkaError | None, list[int]]) -> ClusterMetadata:
    """What list_topics answers: each topic's error and its partitions' replica counts."""
    cluster = ClusterMetadata()
    for name, (error, replica_counts) in topics_found.items():
        found = TopicMetadata()
        found.topic, found.error = name, error
        for index, count in enumerate(replica_counts):
            partition = PartitionMetadata()
            partition.id, partition.replicas = index, list(range(1, count + 1))
            found.partitions[index] = partition
        cluster.topics[name] = found
    return cluster


def test_only_an_unknown_topic_is_absent_and_other_topic_errors_are_raised() -> None:
    unknown = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
    cluster = metadata(a=(None, [1]), b=(unknown, []), other=(None, [1]))
    assert topics.existing(cluster, ["a", "b", "c"]) == ["a"]
    leaderless = metadata(a=(None, [1]), b=(KafkaError(KafkaError.LEADER_NOT_AVAILABLE), [1]))
    with pytest.raises(topics.TopicUnreadable) as raised:
        topics.existing(leaderless, ["a", "b"])
    assert str(raised.value) == (
        "the cluster cannot describe 1 topic(s): b: LEADER_NOT_AVAILABLE (Broker: Leader not available)"
    )
    denied = metadata(c=(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), []))
    with pytest.raises(topics.TopicUnreadable, match="c: TOPIC_AUTHORIZATION_FAILED"):
        topics.existing(denied, ["c"])


def test_the_replication_factor_is_the_fewest_replicas_of_any_partition() -> None:
    cluster = metadata(even=(None, [3, 3]), short=(None, [3, 2, 3]), moving=(None, [4, 3]), empty=(None, []))
    found = {name: topics.replication_factor(topic) for name, topic in cluster.topics.items()}
    assert found == {"even": 3, "short": 2, "moving": 3, "empty": 0}
    # A partition short of a replica is a difference the plan reports, not hidden by the others' count.
    short = topics.plan([TopicSpec("short", -1, 3, {})], {"short": state("short", replicas=found["short"])})
    assert "replication factor 2 -> 3" in short.manual[0].reason


def test_render_writes_every_value_out_with_no_yaml_aliases(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert cli.main(["--config", str(path), "topics", "render", "--strimzi"]) == 0
    out = capsys.readouterr().out
    assert "&id" not in out and "*id" not in out
    # Every topic's ACL has the same operations list: each is written out in full, not as *id001.
    [first, *others] = [acl["operations"] for acl in list(yaml.safe_load_all(out))[-1]["spec"]["authorization"]["acls"]]
    assert first[:3] == ["Write", "Describe", "DescribeConfigs"]
    assert others[:-1] == [first] * (len(EVENT_TYPES))
