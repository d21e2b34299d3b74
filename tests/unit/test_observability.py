"""The observability kit: every metric the alerts and the dashboard name exists on /metrics, with the labels
they use; verification failures by reason; latency, in-flight, ready, fatal, build info; librdkafka statistics."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from bridge.errors import REASONS, SignatureInvalid, StaleTimestamp
from bridge.events import EVENT_TYPES
from bridge.kafka_stats import KafkaStatistics, parse
from bridge.providers.lettermint import signature_headers
from bridge.publisher import STATISTICS_INTERVAL_MS, KafkaPublisher, client_config
from bridge.records import Record
from tests.support.fakes import DELIVERED, FIXED, SECRET, SOURCE, FakePublisher, MockRegistry, wait_until_registered

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "deploy" / "helm" / "webhook-kafka-bridge" / "files"
ALERTS = FILES / "alerts.yaml"
DASHBOARD = FILES / "dashboard.json"
STATISTICS = (ROOT / "tests" / "fixtures" / "kafka" / "statistics.json").read_text()
PATH = f"/webhooks/{SOURCE}"
# Names Prometheus itself provides, and the labels it attaches to every scraped series.
BUILTIN_METRICS = frozenset({"up"})
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint", "le"})
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
MATCHERS = re.compile(r"\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
DURATION = re.compile(r"\[[^\]]*\]")
QUANTILE = re.compile(r"histogram_quantile\(\s*[0-9.]+\s*,(.*)")


# --- what the alerts and the dashboard ask for --------------------------------------------------------


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())["spec"]["groups"]
    return [rule["expr"] for group in rules for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    variables = [var["query"]["query"] for var in dashboard["templating"]["list"] if var["type"] == "query"]
    return exprs + variables


EXPRESSIONS = alert_expressions() + dashboard_expressions()


@dataclass(frozen=True)
class Used:
    metrics: frozenset[str]
    labels: frozenset[str]


def used(expr: str) -> Used:
    """The metric names and label names an expression refers to (no PromQL parser is at hand: a tokeniser will do).

    String literals, range durations and Grafana variables go first; label names come from matchers and
    by/without/on/ignoring lists; what is left that is not a function call or a keyword is a metric name."""
    text = DURATION.sub("", STRING.sub('""', expr)).replace("label_values(", "(")
    labels = {
        match.split("=")[0].split("!")[0].strip() for block in MATCHERS.findall(text) for match in block.split(",")
    }
    labels |= {name.strip() for group in GROUPING.findall(text) for name in group.split(",")}
    bare = GROUPING.sub(" ", MATCHERS.sub(" ", text))
    names = {
        token.group()
        for token in IDENTIFIER.finditer(bare)
        if not bare[token.end() :].lstrip().startswith("(") and token.group() not in PROMQL_WORDS
    }
    # label_values(metric, label): the label is the second argument.
    labels |= {part.strip() for part in re.findall(r",\s*([a-z_]+)\s*\)\s*$", text)}
    names -= labels
    return Used(frozenset(names), frozenset(label for label in labels if label))


def test_the_tokeniser_finds_names_and_labels() -> None:
    expr = 'sum by (source, le) (rate(bridge_x_bucket{job=~"$job", status_class="5xx"}[5m])) / up == 0 and bool x'
    assert used(expr) == Used(
        frozenset({"bridge_x_bucket", "up", "x"}), frozenset({"source", "le", "job", "status_class"})
    )


# --- a real app that served a 2xx, a 401 for several reasons, a dead letter, /readyz and statistics ---------


@dataclass(frozen=True)
class Scrape:
    samples: dict[str, set[str]]  # sample name -> label names seen on it
    types: dict[str, str]  # family name -> counter, gauge, histogram, ...
    text: str


def post(client: TestClient, body: bytes, secret: str = SECRET, signed_at: float = FIXED) -> int:
    return client.post(PATH, content=body, headers=signature_headers(body, secret, signed_at)).status_code


def scrape(client: TestClient) -> Scrape:
    text = client.get("/metrics").text
    samples: dict[str, set[str]] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return Scrape(samples, types, text)


@pytest.fixture
def served(client: TestClient) -> Scrape:
    assert post(client, DELIVERED) == 200
    assert post(client, DELIVERED, secret="whsec_wrong") == 401
    assert post(client, b"not json") == 200  # a dead letter
    assert post(client, DELIVERED) == 200  # a duplicate
    assert client.get("/readyz").status_code == 200
    client.app.metrics.kafka.update(STATISTICS)  # type: ignore[attr-defined]
    return scrape(client)


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_metric_the_alerts_and_the_dashboard_use_is_on_metrics(expr: str, served: Scrape) -> None:
    names = used(expr)
    assert names.metrics, f"no metric found in {expr!r}"
    missing = {name for name in names.metrics if name not in served.samples and name not in BUILTIN_METRICS}
    assert not missing, f"{expr!r} names {sorted(missing)}, not on /metrics"
    bridge = [served.samples[name] for name in names.metrics if name in served.samples]
    labels = set().union(*bridge) | TARGET_LABELS if bridge else TARGET_LABELS
    assert names.labels <= labels, f"{expr!r} uses labels {sorted(names.labels - labels)} that no metric of it has"


@pytest.mark.parametrize("expr", [expr for expr in EXPRESSIONS if "histogram_quantile" in expr])
def test_histogram_quantile_is_over_histogram_buckets_by_le(expr: str, served: Scrape) -> None:
    for call in QUANTILE.findall(expr):
        [metric] = used(call).metrics
        assert metric.endswith("_bucket"), expr
        assert served.types.get(metric.removesuffix("_bucket")) == "histogram", expr
        assert re.search(r"\bby\s*\([^)]*\ble\b", call), f"{expr!r} must keep le"


# The label values the bridge can write, for the matchers that compare with one exactly.
VALUES = {
    "status_class": {f"{digit}xx" for digit in range(1, 6)},
    "reason": set(REASONS),
    "event_type": set(EVENT_TYPES),
}


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_exact_label_values_are_values_the_bridge_writes(expr: str) -> None:
    for label, value in re.findall(r'\b([a-z_]+)\s*=\s*"([^"$]*)"', expr):  # =, not =~ or !=; no variables
        if label in VALUES:
            assert value in VALUES[label], f"{expr!r}: {label}={value!r} is never written"


def test_a_misspelt_name_is_caught(served: Scrape) -> None:
    """The check above cannot pass vacuously: a name one letter off is not on /metrics."""
    assert "bridge_requests_total" in served.samples
    assert "bridge_request_total" not in served.samples
    assert used("sum(rate(bridge_request_total[5m]))").metrics == {"bridge_request_total"}


def test_the_alerts_have_what_an_operator_needs() -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["spec"]["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "BridgeHighErrorRatio",
        "BridgeWebhooksRejected",
        "BridgePublishLatencyHigh",
        "BridgeDeadLettersIncreasing",
        "BridgeNotReady",
        "BridgeProducerFatal",
    }
    for rule in rules:
        assert rule["for"] and rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_dashboard_reads_from_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    [datasource] = [var for var in dashboard["templating"]["list"] if var["name"] == "datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in panels)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert all(target["expr"].count("(") == target["expr"].count(")") for target in panel["targets"])


# --- the metrics themselves ------------------------------------------------------------------------------


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def test_verification_failures_are_counted_by_reason_and_the_answer_is_unchanged(client: TestClient) -> None:
    wrong = client.post(PATH, content=DELIVERED, headers=signature_headers(DELIVERED, "whsec_wrong", FIXED))
    unsigned = client.post(PATH, content=DELIVERED)
    stale = client.post(PATH, content=DELIVERED, headers=signature_headers(DELIVERED, SECRET, FIXED - 301))
    assert [(r.status_code, r.json()["error"]) for r in (wrong, unsigned, stale)] == [
        (401, "signature_invalid"),
        (401, "signature_invalid"),
        (401, "stale_timestamp"),
    ]
    text = client.get("/metrics").text
    for reason in ("no_matching_signature", "missing_header", "stale_timestamp"):
        assert sample(text, "bridge_verification_failures_total", source=SOURCE, reason=reason) == 1.0, reason
    client.post("/webhooks/nope", content=DELIVERED)  # unknown: a 404, not a verification failure
    assert "nope" not in client.get("/metrics").text


def test_the_reasons_are_a_fixed_vocabulary_with_the_right_defaults() -> None:
    assert SignatureInvalid("x").reason == "no_matching_signature"
    assert StaleTimestamp("x").reason == "stale_timestamp"
    assert StaleTimestamp("x", "expired_token").reason == "expired_token"
    assert (SignatureInvalid("x").code, StaleTimestamp("x").code) == ("signature_invalid", "stale_timestamp")
    assert len(REASONS) == len(set(REASONS)) and all(re.fullmatch(r"[a-z_]+", reason) for reason in REASONS)


def test_every_raise_site_in_the_providers_names_its_reason() -> None:
    """A raise site left on the default would be counted under a reason that may not be its own."""
    unnamed = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        source = path.read_text()
        for call in re.finditer(r"raise (SignatureInvalid)\(", source):
            depth, end = 1, call.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(source[end], 0)
                end += 1
            arguments = source[call.end() : end - 1]
            if not re.search(r',\s*(?:"[a-z_]+"|"[a-z_]+" if .+ else "[a-z_]+")\s*,?\s*$', arguments):
                unnamed.append(f"{path.relative_to(ROOT)}: {arguments[:60]}")
    assert unnamed == []


def test_request_latency_is_observed_per_source_and_status_class(client: TestClient) -> None:
    post(client, DELIVERED)
    post(client, DELIVERED, secret="whsec_wrong")
    text = client.get("/metrics").text
    assert sample(text, "bridge_request_seconds_count", source=SOURCE, status_class="2xx") == 1.0
    assert sample(text, "bridge_request_seconds_count", source=SOURCE, status_class="4xx") == 1.0
    assert (sample(text, "bridge_request_seconds_sum", source=SOURCE, status_class="2xx") or 0) > 0
    assert sample(text, "bridge_requests_total", source=SOURCE, status="200", status_class="2xx") == 1.0
    # Probes and /metrics are not webhook requests.
    assert 'source="(unknown)"' not in text


class Held(FakePublisher):
    """Publishes only once released, so a request can be caught in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def publish(self, records: Sequence[Record]) -> None:
        while not self.release.is_set():
            await asyncio.sleep(0.005)
        await super().publish(records)


def test_requests_in_flight(settings: config.Settings, registry: MockRegistry) -> None:
    held = Held()
    with TestClient(create_app(settings, publisher=held, client=registry, clock=lambda: FIXED)) as client:
        wait_until_registered(client)
        answers: list[int] = []
        sender = threading.Thread(target=lambda: answers.append(post(client, DELIVERED)))
        sender.start()
        deadline = time.monotonic() + 5
        while sample(client.get("/metrics").text, "bridge_requests_in_flight") != 1.0:
            assert time.monotonic() < deadline, "the request never showed as in flight"
            time.sleep(0.01)
        held.release.set()
        sender.join(5)
        assert answers == [200]
        assert sample(client.get("/metrics").text, "bridge_requests_in_flight") == 0.0


def test_ready_fatal_and_build_info(client: TestClient, publisher: FakePublisher) -> None:
    text = client.get("/metrics").text
    assert sample(text, "bridge_ready") == 0.0  # not asked yet
    assert sample(text, "bridge_producer_fatal") == 0.0
    client.get("/readyz")
    assert sample(client.get("/metrics").text, "bridge_ready") == 1.0
    publisher.is_ready = False
    client.get("/readyz")
    assert sample(client.get("/metrics").text, "bridge_ready") == 0.0
    publisher.fatal = "Fatal idempotent producer error"
    assert sample(client.get("/metrics").text, "bridge_producer_fatal") == 1.0
    assert sample(text, "bridge_producer_queue_messages") == 0.0  # live, from the publisher, not the statistics
    publisher.queued = 7
    assert sample(client.get("/metrics").text, "bridge_producer_queue_messages") == 7.0
    [info] = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == "bridge_build_info"]
    assert (info.value, set(info.labels)) == (1.0, {"version", "python"})


# --- librdkafka's statistics -------------------------------------------------------------------------------


def test_statistics_parse_a_real_sample() -> None:
    """tests/fixtures/kafka/statistics.json: captured from a real producer on the local stack, under load."""
    stats = parse(STATISTICS)
    assert (stats.queue_bytes, stats.messages_sent) == (100, 1381)
    [broker] = stats.brokers
    assert broker.name.endswith("/1") and broker.up
    assert (broker.rtt_avg_seconds, broker.rtt_p99_seconds) == (pytest.approx(416e-6), pytest.approx(1735e-6))
    assert (broker.requests_in_flight, broker.tx_errors, broker.request_timeouts) == (1, 0, 0)


def gathered(collector: KafkaStatistics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_statistics_become_series_and_leave_with_their_broker() -> None:
    collector = KafkaStatistics()
    assert gathered(collector) == {}  # nothing before the first statistics
    collector.update(STATISTICS)
    series = gathered(collector)
    broker = (("broker", parse(STATISTICS).brokers[0].name),)
    assert series[("bridge_producer_queue_bytes", ())] == 100
    assert series[("bridge_kafka_messages_sent_total", ())] == 1381
    assert series[("bridge_kafka_broker_rtt_p99_seconds", broker)] == pytest.approx(1735e-6)
    assert series[("bridge_kafka_broker_up", broker)] == 1
    assert series[("bridge_kafka_broker_tx_errors_total", broker)] == 0
    # The next interval: no answers (no RTT to report) and the broker renamed (another node took over).
    document = json.loads(STATISTICS)
    [only] = document["brokers"].values()
    only.update(name="127.0.0.1:1/2", nodeid=2, state="DOWN", rtt={**only["rtt"], "cnt": 0})
    document["brokers"] = {"127.0.0.1:1/2": only, "127.0.0.1:1/bootstrap": {**only, "nodeid": -1}}
    collector.update(json.dumps(document))
    series = gathered(collector)
    assert not [key for key in series if key[1] == broker]
    assert series[("bridge_kafka_broker_up", (("broker", "127.0.0.1:1/2"),))] == 0
    assert not [key for key in series if "rtt" in key[0]]
    assert not [key for key in series if "bootstrap" in str(key[1])]


def test_the_producer_asks_for_statistics_and_admin_clients_do_not_get_them() -> None:
    seen: list[str] = []
    publisher = KafkaPublisher("127.0.0.1:1", {}, timeout=0.5, statistics=seen.append)
    assert publisher._config["statistics.interval.ms"] == STATISTICS_INTERVAL_MS
    assert publisher._config["stats_cb"] == seen.append
    assert not {"stats_cb", "statistics.interval.ms"} & set(client_config(publisher._config))
    off = KafkaPublisher("127.0.0.1:1", {"statistics.interval.ms": 0}, timeout=0.5, statistics=seen.append)
    assert off._config["statistics.interval.ms"] == 0
    assert "stats_cb" not in KafkaPublisher("127.0.0.1:1", {}, timeout=0.5)._config


def test_statistics_it_cannot_read_keep_the_last_ones(caplog: pytest.LogCaptureFixture) -> None:
    collector = KafkaStatistics()
    collector.update(STATISTICS)
    before = gathered(collector)
    for garbage in ("not json", "not json", '{"brokers": {"b": {"nodeid": 1, "rtt": "?"}}}'):
        collector.update(garbage)  # must not raise: it runs inside the producer's poll()
    assert gathered(collector) == before
    assert (
        len([r for r in caplog.records if "statistics not understood" in r.getMessage()]) == 2
    )  # once per new problem
