"""Topics as code on the real broker: `bridge topics plan` changes nothing and says what `apply` would do,
`apply` does it once, and /readyz names missing topics until they exist."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bridge.events import EVENT_TYPES
from tests.support.stack import Stack, run_cli, start_bridge

pytestmark = pytest.mark.integration
ALL = len(EVENT_TYPES) + 1  # every event type (unmapped included) and the dead letters
DAY_MS, WEEK_MS = 86_400_000, 604_800_000
SOURCES = '- {name: topics, provider: lettermint, secrets: ["whsec_topics"]}'
EXIT_CHANGES = 3


def write_config(path: Path, stack: Stack, prefix: str, topics: str) -> Path:
    path.write_text(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "{prefix}", create: false, {topics}}}
sources:
  {SOURCES}
""",
        encoding="utf-8",
    )
    return path


def topics_of(stack: Stack, prefix: str) -> dict[str, tuple[int, int, dict[str, str]]]:
    """Each topic under `prefix`: (partitions, replication factor, the configs the bridge manages)."""
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    metadata = admin.list_topics(timeout=15).topics
    names = sorted(name for name in metadata if name.startswith(f"{prefix}."))
    if not names:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    managed = ("max.message.bytes", "min.insync.replicas", "retention.ms")
    found = {}
    for resource, future in admin.describe_configs(resources, request_timeout=15).items():
        entries = future.result()
        partitions = metadata[resource.name].partitions
        replicas = len(next(iter(partitions.values())).replicas)
        found[resource.name] = (len(partitions), replicas, {key: entries[key].value for key in managed})
    return found


def topics_cli(config: Path, action: str) -> subprocess.CompletedProcess[str]:
    return run_cli(config, {}, "topics", action)


@pytest.fixture
def prefix() -> str:
    return f"it-topics-{uuid.uuid4().hex[:8]}"


def test_plan_lists_every_topic_to_create_and_creates_none(stack: Stack, tmp_path: Path, prefix: str) -> None:
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, f"partitions: 2, retention_ms: {DAY_MS}")
    result = topics_cli(config, "plan")
    assert result.returncode == EXIT_CHANGES, result.stderr
    creates = [line for line in result.stdout.splitlines() if line.startswith("+ create ")]
    assert len(creates) == ALL
    assert f"+ create {prefix}.message.delivered (partitions 2, replication broker default (1), " in result.stdout
    assert f"retention.ms={DAY_MS})" in creates[0]
    assert result.stdout.splitlines()[-1] == f"Plan: {ALL} to create."
    assert topics_of(stack, prefix) == {}


def test_apply_creates_them_as_configured_then_has_nothing_to_do(stack: Stack, tmp_path: Path, prefix: str) -> None:
    overrides = f"overrides: {{dead-letter: {{retention_ms: {WEEK_MS}, partitions: 1}}}}"
    topics = f"partitions: 2, replication_factor: 1, min_insync_replicas: 1, retention_ms: {DAY_MS}, {overrides}"
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, topics)
    applied = topics_cli(config, "apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count(": created") == ALL
    found = topics_of(stack, prefix)
    assert len(found) == ALL
    partitions, replicas, configs = found[f"{prefix}.message.delivered"]
    assert (partitions, replicas, configs["min.insync.replicas"], configs["retention.ms"]) == (2, 1, "1", str(DAY_MS))
    assert int(configs["max.message.bytes"]) > 2 * 1024 * 1024  # the record limit, derived
    assert found[f"{prefix}.dead-letter"][0] == 1
    assert found[f"{prefix}.dead-letter"][2]["retention.ms"] == str(WEEK_MS)
    again = topics_cli(config, "apply")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"= {ALL} topic(s) unchanged", "No changes: every topic is as configured."]
    assert topics_cli(config, "plan").returncode == 0
    assert topics_of(stack, prefix) == found


def test_a_changed_retention_is_planned_then_altered(stack: Stack, tmp_path: Path, prefix: str) -> None:
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, f"partitions: 1, retention_ms: {DAY_MS}")
    assert topics_cli(config, "apply").returncode == 0
    before = topics_of(stack, prefix)
    write_config(config, stack, prefix, f"partitions: 1, retention_ms: {WEEK_MS}")
    planned = topics_cli(config, "plan")
    assert planned.returncode == EXIT_CHANGES
    assert f"~ alter {prefix}.webhook.test: retention.ms {DAY_MS} -> {WEEK_MS}" in planned.stdout
    assert planned.stdout.splitlines()[-1] == f"Plan: {ALL} to alter."
    assert topics_of(stack, prefix) == before  # plan changed nothing
    applied = topics_cli(config, "apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count(": altered") == ALL
    assert {configs["retention.ms"] for _, _, configs in topics_of(stack, prefix).values()} == {str(WEEK_MS)}
    assert topics_cli(config, "plan").returncode == 0


def test_partitions_grow_but_a_decrease_is_reported_not_attempted(stack: Stack, tmp_path: Path, prefix: str) -> None:
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, "partitions: 2")
    assert topics_cli(config, "apply").returncode == 0
    write_config(
        config, stack, prefix, "partitions: 2, overrides: {unmapped: {partitions: 3}, dead-letter: {partitions: 1}}"
    )
    planned = topics_cli(config, "plan")
    assert planned.returncode == EXIT_CHANGES
    assert f"~ partitions {prefix}.unmapped: 2 -> 3" in planned.stdout
    assert f"! manual {prefix}.dead-letter: partitions 2 -> 1: Kafka cannot remove partitions" in planned.stdout
    applied = topics_cli(config, "apply")
    assert applied.returncode == 1
    assert f"done: {prefix}.unmapped: partitions added" in applied.stdout
    assert f"not done: {prefix}.dead-letter: partitions 2 -> 1" in applied.stderr
    found = topics_of(stack, prefix)
    assert (found[f"{prefix}.unmapped"][0], found[f"{prefix}.dead-letter"][0]) == (3, 2)


def test_a_replication_factor_above_the_brokers_fails_clearly(stack: Stack, tmp_path: Path, prefix: str) -> None:
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, "replication_factor: 3")
    applied = topics_cli(config, "apply")
    assert applied.returncode == 1
    assert f"failed: {prefix}.message.delivered: " in applied.stderr
    assert "only 1 broker(s)" in applied.stderr
    assert topics_of(stack, prefix) == {}


def test_readyz_names_missing_topics_until_apply_creates_them(stack: Stack, tmp_path: Path, prefix: str) -> None:
    with start_bridge(stack, tmp_path, SOURCES, {}, prefix=prefix, topics="create: false", wait_for="/healthz") as (
        url,
        _,
        config,
    ):
        deadline = time.monotonic() + 30
        while not (ready := httpx.get(f"{url}/readyz", timeout=10)).json().get("problems"):
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.3)
        assert ready.status_code == 503
        [missing] = [problem for problem in ready.json()["problems"] if "topics missing" in problem]
        assert missing.startswith(f"kafka: topics missing: {prefix}.message.created, {prefix}.message.sent, ")
        assert missing.endswith(f"{prefix}.dead-letter (create them with `bridge topics apply`)")
        applied = topics_cli(config, "apply")
        assert applied.returncode == 0, applied.stderr
        created = time.monotonic()
        while (ready := httpx.get(f"{url}/readyz", timeout=10)).status_code != 200:
            assert time.monotonic() < created + 20, ready.text
            time.sleep(0.3)
        assert "problems" not in ready.json()


def set_max_message_bytes(stack: Stack, values: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for topic, value in values.items()
    ]
    for future in admin.incremental_alter_configs(resources, request_timeout=15).values():
        future.result()


def test_an_unset_max_message_bytes_raises_a_smaller_topic_and_never_lowers_a_larger(
    stack: Stack, tmp_path: Path, prefix: str
) -> None:
    config = write_config(tmp_path / "bridge.yaml", stack, prefix, "partitions: 1")
    assert topics_cli(config, "apply").returncode == 0
    derived = int(topics_of(stack, prefix)[f"{prefix}.message.delivered"][2]["max.message.bytes"])
    larger, smaller = f"{prefix}.message.delivered", f"{prefix}.unmapped"
    set_max_message_bytes(stack, {larger: derived * 4, smaller: derived - 1})
    planned = topics_cli(config, "plan")
    assert planned.returncode == EXIT_CHANGES, planned.stderr
    assert planned.stdout.splitlines() == [
        f"~ alter {smaller}: max.message.bytes {derived - 1} -> {derived}",
        f"= {ALL - 1} topic(s) unchanged",
        "Plan: 1 to alter.",
    ]
    applied = topics_cli(config, "apply")
    assert applied.returncode == 0, applied.stderr
    limits = {name: int(found[2]["max.message.bytes"]) for name, found in topics_of(stack, prefix).items()}
    assert (limits[larger], limits[smaller]) == (derived * 4, derived)
    assert topics_cli(config, "plan").returncode == 0
