"""Topics as code: the topics the configuration writes, a plan against what the cluster has, and applying it.

`topic_specs` and `plan` are pure; `describe` and `apply` are the AdminClient calls at the edge; the
Strimzi resources for the same topics are in bridge/strimzi.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
    TopicMetadata,
)

from bridge.events import WRITTEN_TOPICS, topic_for
from bridge.records import record_limit, topic_limit
from bridge.settings import TopicOverride

if TYPE_CHECKING:
    from bridge.config import Settings

ADMIN_TIMEOUT_SECONDS = 15  # every AdminClient request, the publisher's included
BROKER_DEFAULT = -1
# The broker settings a topic created without its own value takes: what `plan` shows for "-1".
BROKER_DEFAULTS = {"partitions": "num.partitions", "replication": "default.replication.factor"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the configuration wants it: -1 partitions or replication is the broker's default, and a
    config key not in `config` is the broker's and left alone on an existing topic. A key in `floors` is a
    minimum rather than a value (the derived record limit where max_message_bytes is unset): a topic is
    created with it, and an existing topic's value is raised to it, never lowered."""

    name: str
    partitions: int = BROKER_DEFAULT
    replication_factor: int = BROKER_DEFAULT
    config: Mapping[str, str] = field(default_factory=dict)
    floors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster has it: its effective config values (its own or the broker's), and the fewest
    replicas any of its partitions has."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass(frozen=True)
class Create:
    spec: TopicSpec


@dataclass(frozen=True)
class Alter:
    topic: str
    changes: tuple[tuple[str, str | None, str], ...]  # (key, now, wanted)


@dataclass(frozen=True)
class AddPartitions:
    topic: str
    now: int
    wanted: int


@dataclass(frozen=True)
class Manual:
    """A difference AdminClient cannot resolve safely: said, never attempted."""

    topic: str
    reason: str


Change = Create | Alter | AddPartitions | Manual


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    unchanged: tuple[str, ...]

    @property
    def pending(self) -> bool:
        return bool(self.changes)

    @property
    def manual(self) -> tuple[Manual, ...]:
        return tuple(change for change in self.changes if isinstance(change, Manual))


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the bridge writes (one per event type, unmapped included, and dead letters), as configured."""
    needed = topic_limit(record_limit(settings.server.max_body_bytes, settings.server.max_header_bytes))
    return [_spec(settings, suffix, needed) for suffix in WRITTEN_TOPICS]


def all_topics(settings: Settings) -> list[str]:
    return [spec.name for spec in topic_specs(settings)]


def _spec(settings: Settings, suffix: str, needed: int) -> TopicSpec:
    base = settings.topics
    mine = base.overrides.get(suffix, TopicOverride())

    def pick(key: str) -> int | None:
        own: int | None = getattr(mine, key)
        inherited: int | None = getattr(base, key)
        return inherited if own is None else own

    chosen = pick("max_message_bytes")
    config = {"max.message.bytes": str(chosen or needed)}
    if (replicas := pick("min_insync_replicas")) not in (None, BROKER_DEFAULT):
        config["min.insync.replicas"] = str(replicas)
    if (retention := pick("retention_ms")) is not None:
        config["retention.ms"] = str(retention)
    partitions, replication = pick("partitions"), pick("replication_factor")
    assert partitions is not None and replication is not None  # topics: has both, always
    # Unset, the record limit is what the topic needs, not what it must be: a larger value someone chose stays.
    floors = frozenset() if chosen else frozenset({"max.message.bytes"})
    return TopicSpec(topic_for(base.prefix, suffix), partitions, replication, dict(sorted(config.items())), floors)


def plan(wanted: Sequence[TopicSpec], existing: Mapping[str, TopicState]) -> Plan:
    """What would make the cluster's topics what `wanted` says; nothing is done here."""
    changes: list[Change] = []
    unchanged: list[str] = []
    for spec in wanted:
        state = existing.get(spec.name)
        found = [Create(spec)] if state is None else _differences(spec, state)
        changes += found
        if not found:
            unchanged.append(spec.name)
    return Plan(tuple(changes), tuple(unchanged))


def _differences(spec: TopicSpec, state: TopicState) -> list[Change]:
    found: list[Change] = []
    altered = tuple(
        (key, state.config.get(key), value)
        for key, value in spec.config.items()
        if _differs(state.config.get(key), value, floor=key in spec.floors)
    )
    if altered:
        found.append(Alter(spec.name, altered))
    if spec.partitions > state.partitions:
        found.append(AddPartitions(spec.name, state.partitions, spec.partitions))
    elif BROKER_DEFAULT < spec.partitions < state.partitions:
        found.append(
            Manual(
                spec.name,
                f"partitions {state.partitions} -> {spec.partitions}: Kafka cannot remove partitions; keep "
                f"{state.partitions} (set topics.partitions to it) or recreate the topic by hand, losing its records",
            )
        )
    if spec.replication_factor not in (BROKER_DEFAULT, state.replication_factor):
        found.append(
            Manual(
                spec.name,
                f"replication factor {state.replication_factor} -> {spec.replication_factor}: needs a partition "
                "reassignment (kafka-reassign-partitions.sh, or Cruise Control), not done by this command",
            )
        )
    return found


def _differs(now: str | None, wanted: str, *, floor: bool) -> bool:
    if now is None or not floor:
        return now != wanted
    return int(now) < int(wanted)


def render(result: Plan, defaults: Mapping[str, str]) -> list[str]:
    """The plan as lines for a person: `+` create, `~` alter or grow, `!` a manual step, then a summary.
    `defaults` are broker settings (num.partitions, ...) when they could be read, to say what -1 becomes."""
    lines = [_line(change, defaults) for change in result.changes]
    if result.unchanged:
        lines.append(f"= {len(result.unchanged)} topic(s) unchanged")
    counts = {kind: sum(isinstance(change, cls) for change in result.changes) for kind, cls in _KINDS.items()}
    summary = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
    lines.append(f"Plan: {summary}." if summary else "No changes: every topic is as configured.")
    return lines


_KINDS: dict[str, type] = {"to create": Create, "to alter": Alter, "to grow": AddPartitions, "manual": Manual}


def _line(change: Change, defaults: Mapping[str, str]) -> str:
    if isinstance(change, Create):
        spec = change.spec
        sizes = [
            f"partitions {_count(spec.partitions, defaults.get(BROKER_DEFAULTS['partitions']))}",
            f"replication {_count(spec.replication_factor, defaults.get(BROKER_DEFAULTS['replication']))}",
        ]
        return f"+ create {spec.name} ({', '.join([*sizes, *(f'{k}={v}' for k, v in spec.config.items())])})"
    if isinstance(change, Alter):
        altered = ", ".join(f"{key} {now or '(unset)'} -> {wanted}" for key, now, wanted in change.changes)
        return f"~ alter {change.topic}: {altered}"
    if isinstance(change, AddPartitions):
        return f"~ partitions {change.topic}: {change.now} -> {change.wanted}"
    return f"! manual {change.topic}: {change.reason}"


def _count(value: int, default: str | None) -> str:
    if value != BROKER_DEFAULT:
        return str(value)
    return f"broker default ({default})" if default is not None else "broker default"


# The AdminClient edge: reading what exists, and doing what a plan says.


class TopicUnreadable(Exception):
    """The cluster lists a topic but says an error for it: whether it is as configured cannot be known."""


def describe(admin: AdminClient, names: Sequence[str]) -> dict[str, TopicState]:
    """The topics of `names` that exist, with their effective configs. Lists the cluster's topics rather than
    asking for each by name, which a broker with auto.create.topics.enable would answer by creating it."""
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS)
    present = existing(metadata, names)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
    configs = admin.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_SECONDS) if resources else {}
    states = {}
    for resource, future in configs.items():
        found = metadata.topics[resource.name]
        config = {key: entry.value for key, entry in future.result().items() if entry.value is not None}
        states[resource.name] = TopicState(resource.name, len(found.partitions), replication_factor(found), config)
    return states


def existing(metadata: ClusterMetadata, names: Sequence[str]) -> list[str]:
    """The names the cluster has. Only UNKNOWN_TOPIC_OR_PART means absent: any other error for a topic
    (LEADER_NOT_AVAILABLE, TOPIC_AUTHORIZATION_FAILED, ...) is raised, since planning a create for a topic
    that exists but cannot be read would be wrong."""
    topics: dict[str, TopicMetadata] = metadata.topics
    listed = {name: topics[name].error for name in names if name in topics}
    failed = [
        f"{name}: {error.name()} ({error.str()})"
        for name, error in listed.items()
        if error is not None and error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART
    ]
    if failed:
        raise TopicUnreadable(f"the cluster cannot describe {len(failed)} topic(s): {'; '.join(failed)}")
    return [name for name, error in listed.items() if error is None]


def replication_factor(found: TopicMetadata) -> int:
    """The fewest replicas of any partition: during a reassignment a partition lists its adding replicas too,
    and a partition short of replicas is what a check must not hide, so the largest count would mislead."""
    return min((len(partition.replicas) for partition in found.partitions.values()), default=0)


def broker_defaults(admin: AdminClient) -> dict[str, str]:
    """A broker's num.partitions and default.replication.factor, or {} where it will not say (no ACL for it):
    only for showing what "-1" becomes."""
    brokers = admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).brokers
    if not brokers:
        return {}
    resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
    try:
        entries = admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_SECONDS)[resource].result()
    except KafkaException:
        return {}
    return {key: entries[key].value for key in BROKER_DEFAULTS.values() if key in entries}


@dataclass
class Applied:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def apply(admin: AdminClient, result: Plan) -> Applied:
    """Create, alter and grow as `result` says; each topic's outcome is reported, a failure does not stop the rest."""
    applied = Applied()
    creates = [change.spec for change in result.changes if isinstance(change, Create)]
    alters = [change for change in result.changes if isinstance(change, Alter)]
    grows = [change for change in result.changes if isinstance(change, AddPartitions)]
    new = [new_topic(spec) for spec in creates]
    if new:
        _record_outcomes(applied, admin.create_topics(new, request_timeout=ADMIN_TIMEOUT_SECONDS), "created")
    if alters:
        resources = [ConfigResource(ResourceType.TOPIC, a.topic, incremental_configs=_entries(a)) for a in alters]
        futures = admin.incremental_alter_configs(resources, request_timeout=ADMIN_TIMEOUT_SECONDS)
        _record_outcomes(applied, {resource.name: future for resource, future in futures.items()}, "altered")
    if grows:
        more = [NewPartitions(grow.topic, grow.wanted) for grow in grows]
        _record_outcomes(
            applied, admin.create_partitions(more, request_timeout=ADMIN_TIMEOUT_SECONDS), "partitions added"
        )
    return applied


def new_topic(spec: TopicSpec) -> NewTopic:
    """The CreateTopics request for `spec`: the bridge's at start-up (`topics.create`) and `topics apply`'s."""
    return NewTopic(spec.name, spec.partitions, spec.replication_factor, config=dict(spec.config))


def _entries(change: Alter) -> list[ConfigEntry]:
    return [ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, _, value in change.changes]


def _record_outcomes(applied: Applied, futures: Mapping[str, Future[Any]], what: str) -> None:
    """Wait for each topic's request and note it as done or failed, with the broker's reason."""
    for topic, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            applied.failed.append(f"{topic}: {error.args[0].str()}")
        else:
            applied.done.append(f"{topic}: {what}")
