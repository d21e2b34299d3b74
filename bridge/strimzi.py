"""Strimzi resources for the bridge: a KafkaTopic per topic it writes, and a KafkaUser with exactly its ACLs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bridge.settings import KafkaSettings, TopicSettings
from bridge.topics import BROKER_DEFAULT, TopicSpec

API_VERSION = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL = "strimzi.io/cluster"
DEFAULT_USER = "webhook-kafka-bridge"
DEFAULT_CLUSTER = "my-cluster"  # the Kafka resource of Strimzi's examples
AUTHENTICATIONS = ("scram-sha-512", "tls", "tls-external")
Authentication = Literal["scram-sha-512", "tls", "tls-external"]
NOT_IN_NAMES = re.compile(r"[^a-z0-9.-]+")
# What the running bridge asks of Kafka, and the right each needs:
#   Write             produce its records
#   Describe          metadata for its topics (the producer's, and /readyz's list_topics); implied by
#                     Write, listed so the user reads as what the bridge does
#   DescribeConfigs   /readyz reads each topic's max.message.bytes (KafkaPublisher._check_topics)
#   Create            topics.create: true only, creating a missing topic at start-up
#   AlterConfigs      topics.create: true only, raising a topic's max.message.bytes to the record limit
#   IdempotentWrite   on the cluster: the idempotent producer's InitProducerId (acks=all, enable.idempotence)
# The bridge reads no topic and joins no group: `bridge consume`, `dlq` and the consumers are other users.
TOPIC_OPERATIONS = ("Write", "Describe", "DescribeConfigs")
CREATING_OPERATIONS = ("Create", "AlterConfigs")
CLUSTER_OPERATIONS = ("IdempotentWrite",)


@dataclass(frozen=True)
class Target:
    """Where the resources go: the Kafka cluster's name (the label the operators watch), a namespace, the user."""

    cluster: str
    user: str
    authentication: Authentication
    namespace: str | None = None
    prefix_acl: bool = False  # one ACL on "<prefix>." rather than one per topic


def authentication_for(kafka: KafkaSettings) -> Authentication:
    """What the configuration's client credentials suggest: a client certificate is tls, else scram-sha-512
    (Strimzi's KafkaUser has no PLAIN or SCRAM-SHA-256)."""
    if kafka.sasl is None and kafka.tls is not None and kafka.tls.certificate is not None:
        return "tls"
    return "scram-sha-512"


def user_for(kafka: KafkaSettings) -> str:
    """The SASL user name the configuration logs in with (the KafkaUser must have it), else DEFAULT_USER."""
    return kafka.sasl.username if kafka.sasl is not None and kafka.sasl.username else DEFAULT_USER


def documents(specs: Sequence[TopicSpec], topics: TopicSettings, target: Target) -> list[dict[str, Any]]:
    """One KafkaTopic per spec, then the KafkaUser."""
    names = [resource_name(spec.name) for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError("two topics have the same Kubernetes name; choose a topic prefix in lower case")
    resources = [kafka_topic(spec, name, target) for spec, name in zip(specs, names, strict=True)]
    return [*resources, kafka_user(specs, topics, target)]


def resource_name(topic: str) -> str:
    """A Kubernetes name for a topic (lower case, '-' for '_'); spec.topicName keeps the real one."""
    return NOT_IN_NAMES.sub("-", topic.lower()).strip("-.")[:253]


def kafka_topic(spec: TopicSpec, name: str, target: Target) -> dict[str, Any]:
    body: dict[str, Any] = {"topicName": spec.name}
    # Left out, Strimzi's topic operator takes the broker's num.partitions and default.replication.factor.
    if spec.partitions != BROKER_DEFAULT:
        body["partitions"] = spec.partitions
    if spec.replication_factor != BROKER_DEFAULT:
        body["replicas"] = spec.replication_factor
    body["config"] = {key: int(value) for key, value in spec.config.items()}
    return {"apiVersion": API_VERSION, "kind": "KafkaTopic", "metadata": _metadata(name, target), "spec": body}


def kafka_user(specs: Sequence[TopicSpec], topics: TopicSettings, target: Target) -> dict[str, Any]:
    operations = [*TOPIC_OPERATIONS, *(CREATING_OPERATIONS if topics.create else ())]
    resources = (
        [{"type": "topic", "name": f"{topics.prefix}.", "patternType": "prefix"}]
        if target.prefix_acl
        else [{"type": "topic", "name": spec.name, "patternType": "literal"} for spec in specs]
    )
    acls = [{"resource": resource, "operations": operations, "host": "*"} for resource in resources]
    acls.append({"resource": {"type": "cluster"}, "operations": list(CLUSTER_OPERATIONS), "host": "*"})
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(target.user, target),
        "spec": {"authentication": {"type": target.authentication}, "authorization": {"type": "simple", "acls": acls}},
    }


def _metadata(name: str, target: Target) -> dict[str, Any]:
    namespace = {} if target.namespace is None else {"namespace": target.namespace}
    return {"name": name, **namespace, "labels": {CLUSTER_LABEL: target.cluster}}
