"""The secured stack for integration tests (stack.sh up --secure on free ports) and bridges configured for it.

One Kafka node with PLAINTEXT, SASL_SSL/SCRAM-SHA-512 and mutual-TLS listeners, and Apicurio over
HTTP and HTTPS, in a temporary state folder; stopped by PID at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.certificates import self_signed
from tests.support.stack import STACK, _wait_http, free_port

PORTS = ("KAFKA", "CONTROLLER", "SASL", "MTLS", "REGISTRY", "REGISTRY_MANAGEMENT", "REGISTRY_TLS")


@dataclass(frozen=True)
class SecureStack:
    plaintext: str
    sasl: str
    mtls: str
    registry_url: str  # plain HTTP
    registry_tls_url: str
    folder: Path  # ca.pem, client.pem, client.key
    username: str
    password: str
    registry_user_info: str  # the registry's Basic auth, "user:password"

    def file(self, name: str) -> str:
        return str(self.folder / name)


def secure_stack(state: Path) -> Iterator[SecureStack]:
    ports = {name: free_port() for name in PORTS}
    env = {**os.environ, "STACK_STATE_DIR": str(state), **{f"STACK_{name}_PORT": str(p) for name, p in ports.items()}}
    try:
        started = subprocess.run([str(STACK), "up", "--secure"], env=env, capture_output=True, text=True)
        if started.returncode != 0:
            pytest.fail(f"stack.sh up --secure failed:\n{started.stderr}")
        client = dict(
            line.split("=", 1) for line in (state / "secure" / "client.env").read_text().splitlines() if "=" in line
        )
        yield SecureStack(
            plaintext=f"127.0.0.1:{ports['KAFKA']}",
            sasl=client["KAFKA_SASL_BOOTSTRAP_SERVERS"],
            mtls=client["KAFKA_MTLS_BOOTSTRAP_SERVERS"],
            registry_url=f"http://127.0.0.1:{ports['REGISTRY']}/apis/ccompat/v7",
            registry_tls_url=client["SCHEMA_REGISTRY_TLS_URL"],
            folder=Path(client["KAFKA_TLS_DIR"]),
            username=client["KAFKA_SASL_USERNAME"],
            password=client["KAFKA_SASL_PASSWORD"],
            registry_user_info=client["SCHEMA_REGISTRY_USER_INFO"],
        )
    finally:
        subprocess.run([str(STACK), "down"], env=env, capture_output=True)


def sasl_kafka(stack: SecureStack, password: str | None = None, ca: str | None = None) -> str:
    """The `kafka:` section for the SCRAM listener (the right password and CA unless told otherwise)."""
    return f"""
kafka:
  bootstrap_servers: "{stack.sasl}"
  sasl: {{mechanism: SCRAM-SHA-512, username: "{stack.username}", password: "{password or stack.password}"}}
  tls: {{ca: "{ca or stack.file("ca.pem")}"}}
"""


def mtls_kafka(stack: SecureStack, certificate: bool = True) -> str:
    pair = f', certificate: "{stack.file("client.pem")}", key: "{stack.file("client.key")}"' if certificate else ""
    return f"""
kafka:
  bootstrap_servers: "{stack.mtls}"
  security_protocol: SSL
  tls: {{ca: "{stack.file("ca.pem")}"{pair}}}
"""


def plaintext_kafka(stack: SecureStack, bootstrap: str | None = None) -> str:
    return f'\nkafka: {{bootstrap_servers: "{bootstrap or stack.plaintext}"}}\n'


def tls_registry(stack: SecureStack, user_info: str | None = None) -> str:
    """The registry over HTTPS, trusting the stack's CA, with Basic auth as a "user:password" string."""
    ca, auth = stack.file("ca.pem"), user_info or stack.registry_user_info
    return f'\nschema_registry: {{url: "{stack.registry_tls_url}", tls: {{ca: "{ca}"}}, basic_auth: "{auth}"}}\n'


def plain_registry(stack: SecureStack) -> str:
    """The registry over plain HTTP, with Basic auth as {username, password}."""
    username, password = stack.registry_user_info.split(":", 1)
    auth = f'{{username: "{username}", password: "{password}"}}'
    return f'\nschema_registry: {{url: "{stack.registry_url}", basic_auth: {auth}}}\n'


@dataclass(frozen=True)
class SecureBridge:
    url: str
    prefix: str
    config: Path
    log: Path

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"


def write_config(folder: Path, kafka: str, registry: str, sources: str, server: str = "") -> tuple[Path, str, int]:
    port, prefix = free_port(), f"sec-{uuid.uuid4().hex[:8]}"
    config = folder / "bridge.yaml"
    config.write_text(
        textwrap.dedent(kafka).strip()
        + "\n"
        + textwrap.dedent(registry).strip()
        + f'\ntopics: {{prefix: "{prefix}"}}\nserver:\n  port: {port}\n'
        + textwrap.indent(textwrap.dedent(server).strip(), "  ")
        + "\nsources:\n"
        + textwrap.indent(textwrap.dedent(sources).strip(), "  ")
        + "\n",
        encoding="utf-8",
    )
    return config, prefix, port


@contextlib.contextmanager
def serve(
    folder: Path, kafka: str, registry: str, sources: str, server: str = "", wait_for: str = "/readyz"
) -> Iterator[SecureBridge]:
    """`bridge serve` with these sections, as a real process; stopped by PID."""
    config, prefix, port = write_config(folder, kafka, registry, sources, server)
    log = folder / "bridge.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(config), "serve"], stdout=out, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url + wait_for, 60, process)
            yield SecureBridge(url, prefix, config, log)
        finally:
            process.terminate()
            process.wait(timeout=30)


def other_ca(folder: Path) -> str:
    """A CA that signed nothing the stack uses: trusting only it, no broker certificate verifies."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / "other-ca.pem"
    path.write_bytes(self_signed(key, "not the stack's CA", ca=True))
    return str(path)
