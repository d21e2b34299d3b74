"""`bridge send-test` for every provider: each signs a fresh example as its provider would (in the
body for Mailgun and SNS, with the configured header for Postmark) and the bridge publishes it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.providers import PROVIDERS
from bridge.providers.ses import EXAMPLE_TOPIC_ARN, SEND_TEST_CERT_URL
from tests.support.certificates import self_signed
from tests.support.stack import Stack, read_topic, run_cli, sent_event_ids, start_bridge

pytestmark = pytest.mark.integration


def sendgrid_keys() -> tuple[str, str]:
    """(public key for options.public_keys, private key for send-test), both base64 DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(public).decode(), base64.b64encode(private).decode()


def sns_key_and_certificate() -> tuple[str, str]:
    """(PEM private key for send-test, PEM self-signed certificate pinned under SEND_TEST_CERT_URL)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private.decode(), self_signed(key, "sns.us-east-1.amazonaws.com").decode()


SOURCES = f"""
- {{name: lettermint, provider: lettermint, secrets: ["whsec_send-test"]}}
- {{name: lettr, provider: lettr, secrets: ["lettr-signing-secret"]}}
- {{name: sendapi, provider: sendapi, secrets: ["whsec_send-test"]}}
- {{name: standard-webhooks, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}}
- name: sendgrid
  provider: sendgrid
  secrets: ["${{SENDGRID_PRIVATE}}"]
  options: {{public_keys: ["${{SENDGRID_PUBLIC}}"]}}
- {{name: mailgun, provider: mailgun, secrets: ["key-send-test"]}}
- {{name: postmark, provider: postmark, secrets: ["pm-token"], options: {{header: X-Webhook-Token}}}}
- name: ses
  provider: ses
  secrets: ["${{SNS_PRIVATE}}"]
  options:
    topic_arns: ["{EXAMPLE_TOPIC_ARN}"]
    certificates: {{"{SEND_TEST_CERT_URL}": "${{SNS_CERTIFICATE}}"}}
"""


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    public, private = sendgrid_keys()
    sns_private, sns_certificate = sns_key_and_certificate()
    env = {
        "SENDGRID_PUBLIC": public,
        "SENDGRID_PRIVATE": private,
        "SNS_PRIVATE": sns_private,
        "SNS_CERTIFICATE": sns_certificate,
    }
    with start_bridge(stack, tmp_path_factory.mktemp("send-test"), SOURCES, env) as (_, prefix, config):
        yield prefix, config, env


def test_every_provider_has_a_send_test_source() -> None:
    assert {
        line.split("provider: ")[1].split(",")[0].strip() for line in SOURCES.splitlines() if "provider: " in line
    } == set(PROVIDERS)


@pytest.mark.parametrize("source", sorted(PROVIDERS))
def test_send_test_delivers_a_signed_example(
    stack: Stack, served: tuple[str, Path, dict[str, str]], source: str
) -> None:
    prefix, config, env = served
    result = run_cli(config, env, "send-test", "--source", source)
    assert result.returncode == 0, result.stdout + result.stderr
    event_ids = sent_event_ids(result)
    assert event_ids
    published = read_topic(stack.bootstrap_servers, f"{prefix}.message.delivered")
    found = {(dict(record.headers() or []).get("event_id") or b"").decode() for record in published}
    assert set(event_ids) <= found
