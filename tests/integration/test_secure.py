"""The bridge against a secured broker and registry (stack.sh up --secure): Lettermint deliveries through
plaintext, SASL_SSL/SCRAM-SHA-512 and mutual TLS, read back by `bridge consume` over the same settings; the
registry over HTTPS; wrong credentials, certificates and listeners answered loudly and safely; a webhook
secret file rotated under load."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from bridge.providers.lettermint import LettermintSender, signature_headers
from tests.support.secure import (
    SecureBridge,
    SecureStack,
    mtls_kafka,
    other_ca,
    plain_registry,
    plaintext_kafka,
    sasl_kafka,
    serve,
    tls_registry,
)
from tests.support.stack import read_topic, run_cli

pytestmark = pytest.mark.integration
SENDER = LettermintSender()
SECRET = "whsec_secure-integration"
SOURCES = f"""
- name: lm
  provider: lettermint
  secrets: ["{SECRET}"]
"""
LISTENERS: dict[str, Callable[[SecureStack], tuple[str, str]]] = {
    "plaintext": lambda stack: (plaintext_kafka(stack), plain_registry(stack)),
    "sasl_ssl-scram": lambda stack: (sasl_kafka(stack), tls_registry(stack)),
    "mutual-tls": lambda stack: (mtls_kafka(stack), tls_registry(stack)),
}


def deliver(bridge: SecureBridge, event_type: str = "message.delivered", secret: str = SECRET) -> httpx.Response:
    body = SENDER.example(event_type, datetime.now(UTC))
    headers = signature_headers(body, secret, time.time())
    return httpx.post(f"{bridge.url}/webhooks/lm", content=body, headers=headers, timeout=35)


@pytest.mark.parametrize("listener", sorted(LISTENERS))
def test_a_delivery_is_published_and_bridge_consume_reads_it_back_through_the_same_settings(
    secured: SecureStack, tmp_path: Path, listener: str
) -> None:
    kafka, registry = LISTENERS[listener](secured)
    with serve(tmp_path, kafka, registry, SOURCES) as bridge:
        response = deliver(bridge)
        assert response.status_code == 200, response.text
        [event_id] = response.json()["events"]
    consumed = run_cli(bridge.config, {}, "consume", bridge.topic("message.delivered"))
    assert consumed.returncode == 0, consumed.stderr
    [line] = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert line["value"]["event_id"] == event_id  # decoded through the registry, over HTTPS where configured
    assert line["headers"]["source"] == "lm"


def wrong_password(stack: SecureStack, folder: Path) -> str:
    return sasl_kafka(stack, password="not-the-password")


def untrusted_broker(stack: SecureStack, folder: Path) -> str:
    return sasl_kafka(stack, ca=other_ca(folder))


def plaintext_to_the_sasl_listener(stack: SecureStack, folder: Path) -> str:
    return plaintext_kafka(stack, bootstrap=stack.sasl)


def no_client_certificate(stack: SecureStack, folder: Path) -> str:
    return mtls_kafka(stack, certificate=False)


FAILURES = {
    wrong_password: r"SASL authentication error: Authentication failed",
    untrusted_broker: r"certificate verify failed",
    plaintext_to_the_sasl_listener: r"brokers are down \(.* with security\.protocol=PLAINTEXT: .*another protocol\)",
    no_client_certificate: r"certificate required|bad certificate|Disconnected",
}


@pytest.mark.parametrize("misconfigured", list(FAILURES), ids=lambda case: case.__name__)
def test_a_broker_the_bridge_cannot_use_keeps_it_unready_says_why_and_publishes_nothing(
    secured: SecureStack, tmp_path: Path, misconfigured: Callable[[SecureStack, Path], str]
) -> None:
    why = FAILURES[misconfigured]
    server = "publish_timeout_seconds: 2\nretry_after_seconds: 7"
    kafka = misconfigured(secured, tmp_path)
    with serve(tmp_path, kafka, plain_registry(secured), SOURCES, server, wait_for="/healthz") as bridge:
        ready = _readyz_saying(bridge, why)
        assert ready.status_code == 503 and ready.json()["kafka"] is False
        response = deliver(bridge)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "7"
    assert re.search(why, bridge.log.read_text()), "the log says why too"
    assert read_topic(secured.plaintext, bridge.topic("message.delivered")) == []


def _readyz_saying(bridge: SecureBridge, why: str, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{bridge.url}/readyz", timeout=10)
        if any(re.search(why, problem) for problem in answer.json().get("problems", [])):
            return answer
        assert time.monotonic() < deadline, f"/readyz never said {why!r}: {answer.text}"
        time.sleep(0.3)


def test_a_webhook_secret_file_rotated_under_load_fails_no_request_signed_with_a_listed_secret(
    secured: SecureStack, tmp_path: Path
) -> None:
    secret_file = tmp_path / "lettermint-secret"
    write_atomically(secret_file, "whsec_old\n")
    sources = f"""
- name: lm
  provider: lettermint
  secrets: ["${{file:{secret_file}}}"]
"""
    with serve(tmp_path, plaintext_kafka(secured), plain_registry(secured), sources) as bridge:
        load = Load(bridge, ["whsec_old"])
        load.start()
        time.sleep(1.5)
        write_atomically(secret_file, "whsec_old\nwhsec_new\n")  # the overlap: both listed
        time.sleep(1.5)  # the bridge looks at the file at most once a second
        load.signing(["whsec_old", "whsec_new"])
        time.sleep(2)
        load.signing(["whsec_new"])  # senders moved over; then the old secret goes
        write_atomically(secret_file, "whsec_new\n")
        time.sleep(2)
        load.stop()
        retired = deliver(bridge, secret="whsec_old")
    assert load.failures == [], load.failures[:5]
    assert {"whsec_old", "whsec_new"} <= load.accepted.keys()
    assert min(load.accepted.values()) >= 5, load.accepted
    assert retired.status_code == 401  # removed from the file: no longer accepted


class Load:
    """Four threads posting signed deliveries, each signed with one of the secrets now being used."""

    def __init__(self, bridge: SecureBridge, secrets: list[str]) -> None:
        self._bridge = bridge
        self._secrets = secrets
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(4)]
        self.failures: list[str] = []
        self.accepted: dict[str, int] = {}

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def signing(self, secrets: list[str]) -> None:
        self._secrets = secrets

    def stop(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout=40)

    def _run(self, index: int) -> None:
        sent = index
        while not self._stopped.is_set():
            secrets = self._secrets
            secret = secrets[sent % len(secrets)]
            sent += 1
            response = deliver(self._bridge, secret=secret)
            if response.status_code == 200:
                self.accepted[secret] = self.accepted.get(secret, 0) + 1
            else:
                self.failures.append(f"{secret}: {response.status_code} {response.text}")


def write_atomically(path: Path, text: str) -> None:
    """As Kubernetes updates a mounted Secret: the new content renamed over the old, never half-written."""
    new = path.with_suffix(".new")
    new.write_text(text, encoding="utf-8")
    os.replace(new, path)


@pytest.mark.parametrize("example", ["bridge-sasl.yaml", "bridge-mtls.yaml"])
def test_the_example_configs_read_from_the_secure_stack_as_they_are(
    secured: SecureStack, tmp_path: Path, example: str
) -> None:
    with serve(tmp_path, plaintext_kafka(secured), plain_registry(secured), SOURCES) as bridge:
        response = deliver(bridge, "message.opened")
        assert response.status_code == 200, response.text
    config = Path(__file__).resolve().parents[2] / "deploy" / "local" / example
    consumed = run_cli(config, client_env(secured), "consume", bridge.topic("message.opened"))
    assert consumed.returncode == 0, consumed.stderr
    [line] = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert line["value"]["event_id"] == response.json()["events"][0]


def client_env(stack: SecureStack) -> dict[str, str]:
    """client.env, as `set -a; . client.env` exports it."""
    text = (stack.folder / "client.env").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def untrusting_registry(stack: SecureStack) -> str:
    """The HTTPS registry without the stack's CA: certifi's bundle does not know it."""
    return tls_registry(stack).replace(f'tls: {{ca: "{stack.file("ca.pem")}"}}, ', "")


@pytest.mark.parametrize(
    ("registry", "why"),
    [
        (lambda stack: tls_registry(stack, user_info="bridge:wrong"), r"401|[Uu]nauthorized"),
        (untrusting_registry, r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"),
    ],
    ids=["wrong-basic-auth", "untrusted-registry-certificate"],
)
def test_a_registry_the_bridge_cannot_use_keeps_it_unready_and_the_log_says_why(
    secured: SecureStack, tmp_path: Path, registry: Callable[[SecureStack], str], why: str
) -> None:
    with serve(tmp_path, plaintext_kafka(secured), registry(secured), SOURCES, wait_for="/healthz") as bridge:
        deadline = time.monotonic() + 20
        while not re.search(why, bridge.log.read_text()):
            assert time.monotonic() < deadline, bridge.log.read_text()
            time.sleep(0.3)
        ready = httpx.get(f"{bridge.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["schemas_registered"] is False
        assert deliver(bridge).status_code == 503


def test_a_rotated_kafka_password_file_is_used_from_the_next_authentication(
    secured: SecureStack, tmp_path: Path
) -> None:
    user = f"rotating-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": secured.plaintext})
    set_scram_password(admin, user, "first-password")
    password_file = tmp_path / "kafka-password"
    write_atomically(password_file, "first-password\n")
    # Idle connections close after a second, so each /readyz authenticates anew.
    kafka = f"""
kafka:
  bootstrap_servers: "{secured.sasl}"
  sasl: {{mechanism: SCRAM-SHA-512, username: "{user}", password: "${{file:{password_file}}}"}}
  tls: {{ca: "{secured.file("ca.pem")}"}}
  producer: {{connections.max.idle.ms: 1000, reconnect.backoff.max.ms: 500}}
"""
    with serve(tmp_path, kafka, plain_registry(secured), SOURCES) as bridge:
        assert deliver(bridge).status_code == 200
        set_scram_password(admin, user, "second-password")  # the broker first: the file still has the old one
        time.sleep(2.5)  # nothing sent: the authenticated connection is closed as idle
        _readyz_saying(bridge, r"Authentication failed")
        write_atomically(password_file, "second-password\n")
        deadline = time.monotonic() + 20
        while httpx.get(f"{bridge.url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "never ready again with the new password"
            time.sleep(0.3)
        assert deliver(bridge).status_code == 200
    assert "kafka.sasl.password changed" in bridge.log.read_text()


def set_scram_password(admin: AdminClient, user: str, password: str) -> None:
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    upsert = UserScramCredentialUpsertion(user, info, password.encode())
    for future in admin.alter_user_scram_credentials([upsert], request_timeout=15).values():
        future.result()
