"""server.management_port on a real `bridge serve`: the probes and /metrics answer there and only there, the
public port serves only /webhooks/, and the counters on the management port move as deliveries are answered."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.providers.lettermint import LettermintSender, signature_headers
from tests.support.stack import Stack, free_port, start_bridge

pytestmark = pytest.mark.integration

SECRET = "whsec_management"
SOURCE = "managed"
SOURCES = f'- {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}'
PROBES = ("/healthz", "/readyz", "/metrics")


def samples(management: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{management}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def all_ready(url: str, times: int = 8) -> bool:
    try:
        return all(httpx.get(url, timeout=5).status_code == 200 for _ in range(times))
    except httpx.HTTPError:
        return False


def deliver(url: str, secret: str = SECRET) -> httpx.Response:
    body = LettermintSender().example("message.delivered", datetime.now(UTC))
    headers = signature_headers(body, secret, time.time())
    return httpx.post(f"{url}/webhooks/{SOURCE}", content=body, headers=headers, timeout=35)


def test_probes_and_metrics_answer_on_the_management_port_only_and_the_counters_move(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    management = f"http://127.0.0.1:{port}"
    with start_bridge(stack, tmp_path, SOURCES, {}, wait_for=f"{management}/readyz", management_port=port) as served:
        url = served[0]
        for path in PROBES:
            answer = httpx.get(management + path, timeout=5)
            assert answer.status_code == 200, path
            assert answer.headers["date"].endswith(" GMT"), path  # uvicorn's Date, kept fresh for this listener
            assert httpx.get(url + path, timeout=5).status_code == 404, path  # the Ingress's port: webhooks only
        assert httpx.get(f"{management}/webhooks/{SOURCE}", timeout=5).status_code == 404

        before = samples(management)
        answers = [deliver(url).status_code, deliver(url).status_code, deliver(url, "whsec_forged").status_code]
        after = samples(management)

    assert answers == [200, 200, 401]
    requests = "bridge_requests_total"
    for status, added in (("200", 2), ("401", 1)):
        labels = {"source": SOURCE, "status": status, "status_class": f"{status[0]}xx"}
        assert value(after, requests, **labels) - value(before, requests, **labels) == added, status
    published = {"source": SOURCE, "event_type": "message.delivered"}
    assert (
        value(after, "bridge_events_published_total", **published)
        - value(before, "bridge_events_published_total", **published)
        == 2
    )
    assert value(after, "bridge_publish_seconds_count") - value(before, "bridge_publish_seconds_count") == 2


def test_a_management_port_taken_fails_start_up_with_status_3(stack: Stack, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = tmp_path / "bridge.yaml"
        config.write_text(
            f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
server: {{port: {free_port()}, management_port: {taken.getsockname()[1]}}}
sources:
  {SOURCES}
""",
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 3, done.stderr
    assert "management_port" in done.stderr


def test_every_worker_listens_on_the_management_port_too(stack: Stack, tmp_path: Path) -> None:
    port, management_port = free_port(), free_port()
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
server: {{port: {port}, management_port: {management_port}, shutdown_timeout_seconds: 5}}
sources:
  {SOURCES}
""",
        encoding="utf-8",
    )
    log = tmp_path / "bridge.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--workers", "2"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # New connections reach either worker: both ready (each registers for itself) on the management port.
        while not all_ready(f"http://127.0.0.1:{management_port}/readyz"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        assert "all 2 workers serving" in log.read_text(errors="replace")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 404
        assert deliver(f"http://127.0.0.1:{port}").status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")
