"""Amazon SES via SNS: SNS signatures, certificate URLs and cache, the subscription handshake, and the
SES payload mapping (docs/providers.md#amazon-ses-via-sns-ses)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid, Unavailable
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.fetch import FETCH_MAX_BYTES, FetchError, http_getter
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers.base import Handshaker, Preparer, ProviderIO
from bridge.providers.ses import EXAMPLE_TOPIC_ARN, SEND_TEST_CERT_URL, Ses, SesSource
from bridge.providers.ses.certificates import CERTIFICATE_TTL_SECONDS, CertificateCache
from bridge.providers.ses.sender import EXAMPLE_EVENTS, SesSender, sign_body, sns_headers
from tests.support import providers as helpers
from tests.support.certificates import self_signed
from tests.support.providers import file_name, fits_schema

FIXTURES = helpers.FIXTURES / "ses"
SES_FIXTURES = sorted(path for path in FIXTURES.glob("*.json") if not path.name.startswith("sns."))

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
OTHER_TOPIC = "arn:aws:sns:us-east-1:123456789012:other-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
OTHER_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-fedcba9876543210.pem"
SUBSCRIBE_URL = f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f"
NOW = 1_754_684_112.0
RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)

# The published vector: real deliveries AWS signed (SignatureVersion 1), captured by Keila
# (github.com/pentacent/keila, test/keila/mailings/ses/), with the AWS certificate they name.
AWS_CERT_URL = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
AWS_CERT = (FIXTURES / "sns.SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem").read_text()
AWS_TOPIC = "arn:aws:sns:eu-central-1:573964052742:keila_notifications"
AWS_NOTIFICATION = (FIXTURES / "sns.bounce.signed.json").read_bytes()
AWS_CONFIRMATION = (FIXTURES / "sns.subscription-confirmation.signed.json").read_bytes()


# --- keys and certificates, made here -----------------------------------------------------------------


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed X.509 certificate for `key`, PEM."""
    return self_signed(key, "sns.amazonaws.com", start=datetime(2025, 1, 1, tzinfo=UTC), days=3650)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


KEY, OTHER_KEY = rsa_key(), rsa_key()
CERT, OTHER_CERT = certificate(KEY), certificate(OTHER_KEY)

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def string_to_sign(envelope: dict[str, Any]) -> bytes:
    """Computed here, independently of the provider module, from the SNS documentation."""
    keys = NOTIFICATION_KEYS if envelope["Type"] == "Notification" else CONFIRMATION_KEYS
    return "".join(f"{key}\n{envelope[key]}\n" for key in keys if key in envelope).encode()


def signed(
    envelope: dict[str, Any], key: rsa.RSAPrivateKey = KEY, version: str = "2", url: str = CERT_URL
) -> dict[str, Any]:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm)
    return envelope | {
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": url,
    }


def notification(message: str | dict[str, Any] = "{}", **fields: Any) -> dict[str, Any]:
    envelope = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Event Notification",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2025-08-08T20:15:12.000Z",
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:c9135db0",
    } | fields
    return {key: value for key, value in envelope.items() if value is not None}


def confirmation(kind: str = "SubscriptionConfirmation", **fields: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2025-08-08T20:15:12.000Z",
    } | fields


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2).encode()


# --- fakes and runners -----------------------------------------------------------------------------------


class FakeGet:
    """An injected getter: answers from `pages`, raises `failure`, records every URL asked for."""

    def __init__(self, pages: dict[str, bytes] | None = None, failure: FetchError | None = None) -> None:
        self.pages = pages if pages is not None else {CERT_URL: CERT, OTHER_CERT_URL: OTHER_CERT}
        self.failure = failure
        self.calls: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if self.failure is not None:
            raise self.failure
        if url not in self.pages:
            raise FetchError(url, 404, "HTTP 404")
        return self.pages[url]


def source(**options: Any) -> SesSource:
    secrets = options.pop("secrets", [])
    return SesSource.model_validate(
        {"name": "ses-prod", "provider": "ses", "secrets": secrets, "options": {"topic_arns": [TOPIC]} | options}
    )


SOURCE = source()


def authenticate(ses: Ses, headers: Headers, body: bytes, src: SesSource, now: float) -> None:
    """What the pipeline does: `prepare` (the certificate fetch), then the pure `verify`."""
    asyncio.run(ses.prepare(headers, body, src, now))
    ses.verify(headers, body, src, now)


def run_verify(
    body: bytes,
    src: SesSource = SOURCE,
    fetch: FakeGet | None = None,
    headers: dict[str, str] | None = None,
    now: float = NOW,
    ses: Ses | None = None,
) -> FakeGet:
    fetch = fetch or FakeGet()
    authenticate(ses or Ses(fetch_certificate=fetch), Headers(headers or {}), body, src, now)
    return fetch


def rejected(body: bytes, **kwargs: Any) -> FakeGet:
    fetch = kwargs.pop("fetch", None) or FakeGet()
    with pytest.raises(SignatureInvalid):
        run_verify(body, fetch=fetch, **kwargs)
    return fetch


def delivery(body: bytes, src: str = "ses-prod") -> Delivery:
    return Delivery(src, "ses", Headers({"x-amz-sns-message-type": "Notification"}), body, RECEIVED)


def normalise_message(message: str | dict[str, Any], **fields: Any) -> list[CanonicalEvent]:
    return Ses().normalise(delivery(encode(notification(message, **fields))))


def fixture_events(path: Path) -> list[CanonicalEvent]:
    return normalise_message(path.read_text(encoding="utf-8"))


# --- 1. the published vector: real AWS-signed deliveries -------------------------------------------------

AWS_SOURCE = SesSource.model_validate(
    {
        "name": "keila",
        "provider": "ses",
        "options": {"topic_arns": [AWS_TOPIC], "certificates": {AWS_CERT_URL: AWS_CERT}},
    }
)


@pytest.mark.parametrize("body", [AWS_NOTIFICATION, AWS_CONFIRMATION], ids=["notification", "confirmation"])
def test_real_aws_signatures_verify_against_the_pinned_aws_certificate(body: bytes) -> None:
    assert run_verify(body, AWS_SOURCE).calls == []  # pinned: nothing fetched


def test_real_aws_vector_is_what_the_documented_string_to_sign_gives() -> None:
    envelope = json.loads(AWS_NOTIFICATION)
    key = x509.load_pem_x509_certificate(AWS_CERT.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(envelope["Signature"]), string_to_sign(envelope), padding.PKCS1v15(), hashes.SHA1())


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda e: e | {"Message": e["Message"].replace("Permanent", "Transient")}, id="message"),
        pytest.param(lambda e: e | {"Subject": "Amazon SES Email Event"}, id="subject"),
        pytest.param(lambda e: {k: v for k, v in e.items() if k != "Subject"}, id="subject-dropped"),
        pytest.param(lambda e: e | {"Timestamp": "2021-11-01T08:31:10.836Z"}, id="timestamp"),
        pytest.param(lambda e: e | {"SignatureVersion": "2"}, id="version-2-label"),
    ],
)
def test_real_aws_vector_tampered_is_rejected(edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    rejected(encode(edit(json.loads(AWS_NOTIFICATION))), src=AWS_SOURCE)


def test_real_aws_vector_from_an_unlisted_topic_is_rejected() -> None:
    rejected(AWS_NOTIFICATION, src=source(certificates={AWS_CERT_URL: AWS_CERT}))


# --- 2. signature versions, tampering, wrong certificate ---------------------------------------------


def test_verify_is_synchronous_and_the_io_is_in_prepare() -> None:
    assert not inspect.iscoroutinefunction(Ses.verify)
    assert inspect.iscoroutinefunction(Ses.prepare)
    assert isinstance(Ses(), Preparer) and isinstance(Ses(), Handshaker)


def test_verify_without_prepare_has_no_key_for_an_unpinned_certificate() -> None:
    fetch = FakeGet()
    with pytest.raises(SignatureInvalid, match="neither pinned nor fetched"):
        Ses(fetch_certificate=fetch).verify(Headers(), encode(GOOD), SOURCE, NOW)
    assert fetch.calls == []


def test_verify_without_prepare_uses_a_pinned_certificate() -> None:
    Ses(fetch_certificate=FakeGet({})).verify(
        Headers(), encode(GOOD), source(certificates={CERT_URL: CERT.decode()}), NOW
    )


def test_prepare_fetches_and_caches_what_verify_then_uses() -> None:
    fetch = FakeGet()
    ses = Ses(fetch_certificate=fetch)
    asyncio.run(ses.prepare(Headers(), encode(GOOD), SOURCE, NOW))
    assert fetch.calls == [CERT_URL]
    ses.verify(Headers(), encode(GOOD), SOURCE, NOW + 60)
    asyncio.run(ses.prepare(Headers(), encode(GOOD), SOURCE, NOW + 60))
    assert fetch.calls == [CERT_URL]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    "envelope",
    [notification(), notification(Subject=None), confirmation(), confirmation("UnsubscribeConfirmation")],
    ids=["notification", "no-subject", "subscription-confirmation", "unsubscribe-confirmation"],
)
def test_valid_signatures_verify(envelope: dict[str, Any], version: str) -> None:
    assert run_verify(encode(signed(envelope, version=version))).calls == [CERT_URL]


def test_unsigned_fields_may_change() -> None:
    envelope = signed(notification()) | {"UnsubscribeURL": "https://example.com/", "Extra": 1}
    run_verify(encode(envelope))


def test_the_raw_bytes_are_not_what_is_signed() -> None:
    """SNS signs field values, so whitespace and key order in the JSON document do not matter."""
    envelope = signed(notification())
    run_verify(json.dumps(dict(reversed(envelope.items())), separators=(",", ":")).encode())


GOOD = signed(notification({"eventType": "Delivery"}))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(encode(GOOD | {"Message": '{"eventType":"Bounce"}'}), id="tampered-message"),
        pytest.param(encode(GOOD | {"MessageId": "another-id"}), id="tampered-message-id"),
        pytest.param(encode(GOOD | {"Timestamp": "2025-08-08T20:15:13.000Z"}), id="tampered-timestamp"),
        pytest.param(encode(GOOD | {"Subject": "other"}), id="tampered-subject"),
        pytest.param(encode({k: v for k, v in GOOD.items() if k != "Subject"}), id="subject-removed"),
        pytest.param(encode(GOOD | {"Type": "UnsubscribeConfirmation"}), id="tampered-type"),
        pytest.param(encode(signed(notification(), version="1") | {"SignatureVersion": "2"}), id="v1-labelled-v2"),
        pytest.param(encode(signed(notification(), version="2") | {"SignatureVersion": "1"}), id="v2-labelled-v1"),
        pytest.param(encode(GOOD | {"SignatureVersion": "3"}), id="unknown-version"),
        pytest.param(encode(GOOD | {"SignatureVersion": 2}), id="version-not-a-string-2"),
        pytest.param(encode(GOOD | {"Signature": GOOD["Signature"][:-4] + "AAA="}), id="tampered-signature"),
        pytest.param(encode(GOOD | {"Signature": "not base64!"}), id="signature-not-base64"),
        pytest.param(encode(GOOD | {"Signature": ""}), id="signature-empty"),
    ],
)
def test_tampered_deliveries_are_rejected(body: bytes) -> None:
    rejected(body)


def test_topic_changed_to_another_allowed_topic_is_rejected() -> None:
    rejected(encode(GOOD | {"TopicArn": OTHER_TOPIC}), src=source(topic_arns=[TOPIC, OTHER_TOPIC]))


def test_wrong_certificate_is_rejected() -> None:
    """Signed with another key, naming a certificate URL that serves ours."""
    rejected(encode(signed(notification(), key=OTHER_KEY)))


def test_a_certificate_url_serving_the_signers_own_certificate_is_still_an_sns_url() -> None:
    fetch = FakeGet({CERT_URL: OTHER_CERT})
    rejected(encode(signed(notification())), fetch=fetch)
    run_verify(encode(signed(notification(), key=OTHER_KEY)), fetch=fetch)


@pytest.mark.parametrize("key_name", ["Message", "MessageId", "Timestamp", "TopicArn", "Type"])
def test_missing_signed_field_is_rejected(key_name: str) -> None:
    envelope = {key: value for key, value in notification().items() if key != key_name}
    assert rejected(encode(envelope | {"Signature": GOOD["Signature"], "SigningCertURL": CERT_URL})).calls == []


@pytest.mark.parametrize("key_name", ["SubscribeURL", "Token"])
def test_missing_confirmation_field_is_rejected(key_name: str) -> None:
    envelope = {key: value for key, value in confirmation().items() if key != key_name}
    rejected(encode(envelope | {"SignatureVersion": "2", "Signature": GOOD["Signature"], "SigningCertURL": CERT_URL}))


@pytest.mark.parametrize("key_name", ["Signature", "SignatureVersion", "SigningCertURL"])
def test_missing_signature_field_is_rejected(key_name: str) -> None:
    assert rejected(encode({key: value for key, value in GOOD.items() if key != key_name})).calls == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'["Type", "Notification"]', id="json-array"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(encode(GOOD | {"Type": "Foo"}), id="unknown-type"),
        pytest.param(encode(GOOD | {"Message": {"eventType": "Bounce"}}), id="message-not-a-string"),
        pytest.param(encode(GOOD | {"Subject": 7}), id="subject-not-a-string"),
        pytest.param((FIXTURES / "publishing.delivery.json").read_bytes(), id="raw-message-delivery"),
    ],
)
def test_unparseable_or_incomplete_bodies_are_rejected_before_any_fetch(body: bytes) -> None:
    assert rejected(body).calls == []


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-amz-sns-message-type", "SubscriptionConfirmation"), ("x-amz-sns-topic-arn", OTHER_TOPIC)],
)
def test_sns_headers_contradicting_the_signed_body_are_rejected(header: str, value: str) -> None:
    rejected(encode(GOOD), headers={header: value})


def test_sns_headers_agreeing_with_the_body_are_accepted() -> None:
    run_verify(encode(GOOD), headers={"x-amz-sns-message-type": "Notification", "x-amz-sns-topic-arn": TOPIC})


def test_there_is_no_timestamp_window() -> None:
    """SNS's Timestamp is the publish time, the same on every retry: a year-old one still verifies."""
    run_verify(encode(GOOD), now=NOW + 365 * 86_400)
    run_verify(encode(GOOD), now=0)


# --- 3. the certificate URL, checked before anything is fetched ----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://attacker.example/SimpleNotificationService-0123.pem",
        "https://sns.us-east-1.amazonaws.com.attacker.example/SimpleNotificationService-0123.pem",
        "https://attacker.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@attacker.example/x.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://sns.us-east-1.amazonaws.com:notaport/x.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.txt",
        "https://sns.ab.amazonaws.com/x.pem",
        "https://sqs.us-east-1.amazonaws.com/x.pem",
        "https://sns.us_east-1.amazonaws.com/x.pem",
        "https://[::1]/x.pem",
        "file:///etc/ssl/cert.pem",
        "//sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazon\naws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com\t.attacker.example/x.pem",
        "https://sns.us-east-1.amazonaws.com/ x.pem",
        "https://sns.us-east-1.amazonaws.com/\u00e9.pem",
        "",
    ],
)
def test_a_certificate_url_off_sns_is_rejected_without_fetching(url: str) -> None:
    fetch = FakeGet({url: CERT})
    assert rejected(encode(signed(notification(), url=url)), fetch=fetch).calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123.pem",
        "https://sns.us-gov-west-1.amazonaws.com:443/SimpleNotificationService-0123.pem",
    ],
)
def test_certificate_urls_on_sns_hosts_are_fetched(url: str) -> None:
    assert run_verify(encode(signed(notification(), url=url)), fetch=FakeGet({url: CERT})).calls == [url]


def test_a_topic_not_allowed_is_rejected_before_any_fetch() -> None:
    body = encode(signed(notification(TopicArn=OTHER_TOPIC)))
    assert rejected(body).calls == []


# --- 4. fetching and caching certificates ------------------------------------------------------------------


def test_the_certificate_is_fetched_once_for_two_deliveries() -> None:
    fetch = FakeGet()
    ses = Ses(fetch_certificate=fetch)
    run_verify(encode(GOOD), ses=ses, fetch=fetch)
    run_verify(encode(signed(notification(MessageId="second"))), ses=ses, fetch=fetch, now=NOW + 60)
    assert fetch.calls == [CERT_URL]


def test_a_cached_certificate_expires_after_its_ttl() -> None:
    fetch = FakeGet()
    ses = Ses(fetch_certificate=fetch)
    run_verify(encode(GOOD), ses=ses, fetch=fetch)
    run_verify(encode(GOOD), ses=ses, fetch=fetch, now=NOW + CERTIFICATE_TTL_SECONDS - 1)
    run_verify(encode(GOOD), ses=ses, fetch=fetch, now=NOW + CERTIFICATE_TTL_SECONDS)
    assert fetch.calls == [CERT_URL, CERT_URL]


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    fetch = FakeGet()
    ses = Ses(fetch_certificate=fetch, cache=CertificateCache(size=1))
    first, second = encode(GOOD), encode(signed(notification(), key=OTHER_KEY, url=OTHER_CERT_URL))
    for body in (first, second, first):
        run_verify(body, ses=ses, fetch=fetch)
    assert fetch.calls == [CERT_URL, OTHER_CERT_URL, CERT_URL]


def test_the_cache_evicts_the_least_recently_used() -> None:
    cache, keys = CertificateCache(size=2), [rsa_key().public_key() for _ in range(3)]
    cache.put("a", keys[0], NOW)
    cache.put("b", keys[1], NOW)
    assert cache.get("a", NOW) is keys[0]  # a is now the most recently used
    cache.put("c", keys[2], NOW)
    assert (cache.get("a", NOW), cache.get("b", NOW), cache.get("c", NOW)) == (keys[0], None, keys[2])


def test_a_signature_that_is_not_base64_is_said_to_be_so() -> None:
    with pytest.raises(SignatureInvalid, match="not base64"):
        run_verify(encode(GOOD | {"Signature": GOOD["Signature"][:10] + "!" + GOOD["Signature"][10:]}))


def test_a_failed_verification_does_not_poison_the_cache() -> None:
    fetch = FakeGet()
    ses = Ses(fetch_certificate=fetch)
    with pytest.raises(SignatureInvalid):
        run_verify(encode(signed(notification(), key=OTHER_KEY)), ses=ses, fetch=fetch)
    run_verify(encode(GOOD), ses=ses, fetch=fetch)
    assert fetch.calls == [CERT_URL]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (FetchError(CERT_URL, 404, "HTTP 404"), SignatureInvalid),
        (FetchError(CERT_URL, 403, "HTTP 403"), SignatureInvalid),
        (FetchError(CERT_URL, 503, "HTTP 503"), Unavailable),
        (FetchError(CERT_URL, None, "timed out"), Unavailable),
    ],
)
def test_fetch_failures(failure: FetchError, error: type[Exception]) -> None:
    """No such certificate is the sender's problem (401); an unreachable one is ours, so SNS retries (503)."""
    with pytest.raises(error) as caught:
        run_verify(encode(GOOD), fetch=FakeGet(failure=failure))
    assert type(caught.value) is error


EC_CERT = certificate(ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize("page", [b"not a certificate", CERT.replace(b"CERTIFICATE", b"PUBLIC KEY"), EC_CERT])
def test_an_unusable_certificate_is_rejected_and_not_cached(page: bytes) -> None:
    fetch = FakeGet({CERT_URL: page})
    ses = Ses(fetch_certificate=fetch)
    for _ in range(2):
        with pytest.raises(SignatureInvalid):
            run_verify(encode(GOOD), ses=ses, fetch=fetch)
    assert fetch.calls == [CERT_URL, CERT_URL]


def test_a_pinned_certificate_is_used_without_fetching() -> None:
    src = source(certificates={CERT_URL: CERT.decode()})
    assert run_verify(encode(GOOD), src=src).calls == []


def test_a_pinned_certificate_is_not_trusted_for_another_key() -> None:
    src = source(certificates={CERT_URL: OTHER_CERT.decode()})
    assert rejected(encode(GOOD), src=src).calls == []


@pytest.mark.parametrize(("key", "url"), [(KEY, CERT_URL), (OTHER_KEY, OTHER_CERT_URL)], ids=["current", "next"])
def test_rotation_either_pinned_certificate_verifies(key: rsa.RSAPrivateKey, url: str) -> None:
    src = source(certificates={CERT_URL: CERT.decode(), OTHER_CERT_URL: OTHER_CERT.decode()})
    assert run_verify(encode(signed(notification(), key=key, url=url)), src=src).calls == []


def test_an_unpinned_url_is_fetched_even_where_others_are_pinned() -> None:
    src = source(certificates={OTHER_CERT_URL: OTHER_CERT.decode()})
    assert run_verify(encode(GOOD), src=src).calls == [CERT_URL]


# --- 5. the default getter ----------------------------------------------------------------------------------


def get_with(handler: Callable[[httpx.Request], httpx.Response], url: str = CERT_URL) -> bytes:
    async def get() -> bytes:
        return await http_getter(httpx.MockTransport(handler))(url)

    return asyncio.run(get())


def test_default_getter_returns_the_body() -> None:
    assert get_with(lambda request: httpx.Response(200, content=CERT)) == CERT


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (httpx.Response(404), 404),
        (httpx.Response(500), 500),
        (httpx.Response(301, headers={"Location": "https://attacker.example/x.pem"}), 301),
        (httpx.Response(200, content=b"x" * (FETCH_MAX_BYTES + 1)), 200),
    ],
    ids=["404", "500", "redirect-not-followed", "too-long"],
)
def test_default_getter_failures(response: httpx.Response, status: int) -> None:
    with pytest.raises(FetchError) as caught:
        get_with(lambda request: response)
    assert caught.value.status == status


def test_default_getter_invalid_url_is_a_fetch_failure() -> None:
    with pytest.raises(FetchError):
        get_with(lambda request: httpx.Response(200), url="https://sns.us-east-1.amazonaws.com\n/x.pem")


def test_default_getter_transport_failure_has_no_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FetchError) as caught:
        get_with(refuse)
    assert caught.value.status is None


# --- 6. the subscription handshake -------------------------------------------------------------------------


def handshake(
    envelope: dict[str, Any], confirm: bool = False, get: FakeGet | None = None
) -> tuple[dict[str, Any] | None, FakeGet]:
    get = get or FakeGet(
        {SUBSCRIBE_URL: b"<SubscriptionArn>arn:aws:sns:us-east-1:123456789012:ses-events:1f</SubscriptionArn>"}
    )
    ses = Ses(fetch_certificate=FakeGet(), get_url=get)
    body = encode(signed(envelope))
    src = source(confirm_subscriptions=confirm)
    authenticate(ses, Headers(), body, src, NOW)
    return asyncio.run(ses.handshake(delivery(body), src)), get


def test_confirmation_with_confirm_on_gets_the_subscribe_url() -> None:
    reply, get = handshake(confirmation(), confirm=True)
    assert get.calls == [SUBSCRIBE_URL]
    assert reply == {
        "status": "subscription-confirmed",
        "topic_arn": TOPIC,
        "subscription_arn": "arn:aws:sns:us-east-1:123456789012:ses-events:1f",
    }


def test_confirmation_with_confirm_off_is_pending_and_surfaces_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.providers.ses"):
        reply, get = handshake(confirmation(), confirm=False)
    assert get.calls == []
    assert reply == {"status": "subscription-pending", "topic_arn": TOPIC, "subscribe_url": SUBSCRIBE_URL}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert SUBSCRIBE_URL in record.getMessage() and "ses-prod" in record.getMessage()


def test_a_failed_confirmation_is_unavailable_so_sns_retries() -> None:
    with pytest.raises(Unavailable):
        handshake(confirmation(), confirm=True, get=FakeGet(failure=FetchError(SUBSCRIBE_URL, None, "timed out")))


def test_unsubscribe_confirmation_is_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.providers.ses"):
        reply, get = handshake(confirmation("UnsubscribeConfirmation"), confirm=True)
    assert (reply, get.calls) == ({"status": "unsubscribed", "topic_arn": TOPIC}, [])
    assert "unsubscribed" in caplog.records[0].getMessage()


def test_a_notification_is_no_handshake() -> None:
    reply, get = handshake(notification(), confirm=True)
    assert (reply, get.calls) == (None, [])


OFF_SNS_SUBSCRIBE_URLS = [
    "https://attacker.example/?Action=ConfirmSubscription",
    "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    "https://sns.us-east-1.amazonaws.com.attacker.example/?Action=ConfirmSubscription",
]


@pytest.mark.parametrize("url", OFF_SNS_SUBSCRIBE_URLS)
@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_a_subscribe_url_off_sns_is_refused_before_any_fetch(url: str, kind: str) -> None:
    """Even correctly signed (pinned or leaked key): SNS only ever sends its own hosts."""
    assert rejected(encode(signed(confirmation(kind, SubscribeURL=url)))).calls == []


@pytest.mark.parametrize("url", OFF_SNS_SUBSCRIBE_URLS)
def test_handshake_never_gets_a_subscribe_url_off_sns(url: str) -> None:
    get = FakeGet({url: b""})
    ses = Ses(fetch_certificate=FakeGet(), get_url=get)
    body = encode(signed(confirmation(SubscribeURL=url)))
    with pytest.raises(SignatureInvalid):
        asyncio.run(ses.handshake(delivery(body), source(confirm_subscriptions=True)))
    assert get.calls == []


# --- 7. configuration ---------------------------------------------------------------------------------------


def config_error(options: dict[str, Any], secrets: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        config.parse_source({"name": "s", "provider": "ses", "secrets": secrets or [], "options": options})
    return str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "options.topic_arns: Field required"),
        ({"topic_arns": []}, "options.topic_arns: list at least one TopicArn"),
        ({"topic_arns": ["*"]}, "not an SNS topic ARN"),
        ({"topic_arns": ["arn:aws:sqs:us-east-1:123456789012:queue"]}, "not an SNS topic ARN"),
        ({"topic_arns": [TOPIC], "certificates": {"http://sns.us-east-1.amazonaws.com/x.pem": "x"}}, "plain https"),
        ({"topic_arns": [TOPIC], "certificates": {"https://example.com/x.pem": "x"}}, "not on an SNS host"),
        ({"topic_arns": [TOPIC], "certificates": {CERT_URL: "not a pem"}}, "not a PEM X.509"),
        ({"topic_arns": [TOPIC], "certificates": {CERT_URL: EC_CERT.decode()}}, "does not hold an RSA key"),
        ({"topic_arns": [TOPIC], "tolerance": 5}, "options.tolerance: unknown key"),
        ({"topic_arns": [TOPIC], "confirm_subscriptions": "maybe"}, "options.confirm_subscriptions"),
    ],
)
def test_bad_options_are_rejected_naming_the_key(options: dict[str, Any], message: str) -> None:
    assert message in config_error(options)


def test_secrets_must_be_pem_rsa_private_keys() -> None:
    assert "secrets: the ses provider takes PEM RSA private keys" in config_error({"topic_arns": [TOPIC]}, ["whsec_x"])


def test_a_complete_configuration_is_accepted() -> None:
    src = source(
        topic_arns=[TOPIC, OTHER_TOPIC],
        certificates={CERT_URL: CERT.decode()},
        confirm_subscriptions=True,
        secrets=[private_pem(KEY)],
    )
    assert src.options.topic_arns == [TOPIC, OTHER_TOPIC]
    assert src.options.confirm_subscriptions is True
    assert list(src.pinned_keys) == [CERT_URL]
    assert src.pinned_keys[CERT_URL].public_numbers() == KEY.public_key().public_numbers()


def test_a_bad_source_is_a_validation_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"options\.topic_arns: list at least one TopicArn"):
        SesSource.model_validate({"name": "s", "provider": "ses", "options": {"topic_arns": []}})


def test_the_registry_builds_ses_with_the_apps_getter() -> None:
    spec = PROVIDERS["ses"]
    assert (spec.source, spec.sender) == (SesSource, SesSender)
    assert isinstance(spec.build(ProviderIO.default()), Ses)
    fetch = FakeGet()
    ses = spec.build(ProviderIO(http_get=fetch))
    assert isinstance(ses, Ses)
    authenticate(ses, Headers(), encode(GOOD), SOURCE, NOW)
    assert fetch.calls == [CERT_URL]


# --- 8. normaliser: the fixtures --------------------------------------------------------------------------


def test_fixtures_cover_both_notification_styles_and_every_documented_event() -> None:
    names = {json.loads(path.read_bytes()).get("eventType") for path in SES_FIXTURES}
    assert names - {None} == {
        "Bounce", "Complaint", "Delivery", "Send", "Reject", "Open", "Click", "Rendering Failure",
        "DeliveryDelay", "Subscription",
    }  # fmt: skip
    identity = {json.loads(path.read_bytes()).get("notificationType") for path in SES_FIXTURES}
    assert identity - {None} == {"Bounce", "Complaint", "Delivery"}


MID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
SNS_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"

# fixture → (canonical type, [(event_id, recipient)], occurred_at)
EXPECTED: dict[str, tuple[str, list[tuple[str, str | None]], str]] = {
    "publishing.bounce.json": (
        "message.hard_bounced",
        [(f"{SNS_ID}:recipient@example.com", "recipient@example.com")],
        "2017-08-05T00:41:02.669Z",
    ),
    "publishing.complaint.json": (
        "message.spam_complaint",
        [(f"{SNS_ID}:recipient@example.com", "recipient@example.com")],
        "2017-08-05T00:41:02.669Z",
    ),
    "publishing.delivery.json": (
        "message.delivered",
        [(f"{SNS_ID}:recipient@example.com", "recipient@example.com")],
        "2016-10-19T23:21:04.133Z",
    ),
    "publishing.delivery-delay.json": (
        "message.deferred",
        [(f"{SNS_ID}:recipient@example.com", "recipient@example.com")],
        "2020-06-16T00:25:40.095Z",
    ),
    "publishing.send.json": ("message.created", [(SNS_ID, "recipient@example.com")], "2016-10-14T05:02:16.645Z"),
    "publishing.reject.json": ("message.failed", [(SNS_ID, "sender@example.com")], "2016-10-14T17:38:15.211Z"),
    "publishing.rendering-failure.json": (
        "message.failed",
        [(SNS_ID, "recipient@example.com")],
        "2018-01-22T18:43:06.197Z",
    ),
    "publishing.open.json": ("message.opened", [(SNS_ID, "recipient@example.com")], "2017-08-09T22:00:19.652Z"),
    "publishing.click.json": ("message.clicked", [(SNS_ID, "recipient@example.com")], "2017-08-09T23:51:25.570Z"),
    "publishing.subscription.json": (
        "message.unsubscribed",
        [(SNS_ID, "recipient@example.com")],
        "2022-01-12T01:00:17.910Z",
    ),
    "identity.bounce-with-dsn.json": (
        "message.hard_bounced",
        [(f"{SNS_ID}:jane@example.com", "jane@example.com")],
        "2016-01-27T14:59:38.237Z",
    ),
    "identity.bounce-without-dsn.json": (
        "message.hard_bounced",
        [(f"{SNS_ID}:jane@example.com", "jane@example.com"), (f"{SNS_ID}:richard@example.com", "richard@example.com")],
        "2016-01-27T14:59:38.237Z",
    ),
    "identity.complaint-with-feedback.json": (
        "message.spam_complaint",
        [(f"{SNS_ID}:richard@example.com", "richard@example.com")],
        "2016-01-27T14:59:38.237Z",
    ),
    "identity.complaint-without-feedback.json": (
        "message.spam_complaint",
        [(f"{SNS_ID}:richard@example.com", "richard@example.com")],
        "2016-01-27T14:59:38.237Z",
    ),
    "identity.delivery.json": (
        "message.delivered",
        [(f"{SNS_ID}:jane@example.com", "jane@example.com")],
        "2016-01-27T14:59:38.237Z",
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == [path.name for path in SES_FIXTURES]


@pytest.mark.parametrize("path", SES_FIXTURES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    ses = json.loads(text)
    event_type, ids, occurred_at = EXPECTED[path.name]
    events = fixture_events(path)
    assert [(event.event_id, event.recipient) for event in events] == ids
    for event in events:
        assert (event.event_type, event.provider_event) == (
            event_type,
            ses.get("eventType", ses.get("notificationType")),
        )
        assert (event.message_id, event.key) == (ses["mail"]["messageId"], ses["mail"]["messageId"])
        assert event.occurred_at == datetime.fromisoformat(occurred_at)
        assert (event.raw, event.provider, event.source, event.channel, event.received_at) == (
            text, "ses", "ses-prod", "email", RECEIVED
        )  # fmt: skip
        assert (event.attempt, dict(event.metadata)) == (None, {})


@pytest.mark.parametrize("path", SES_FIXTURES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert all(fits_schema(event) for event in fixture_events(path))


SMTP_NONE = {"smtp_status_code": None, "smtp_enhanced_status_code": None, "smtp_response": None}
DETAILS: dict[str, dict[str, Any]] = {
    "publishing.bounce.json": {
        "reason": "General",
        "smtp_status_code": 550,
        "smtp_enhanced_status_code": "5.1.1",
        "smtp_response": "smtp; 550 5.1.1 user unknown",
        "bounce_class": "Permanent/General",
    },
    "identity.bounce-without-dsn.json": {"reason": "General", **SMTP_NONE, "bounce_class": "Permanent/General"},
    "publishing.complaint.json": {"feedback_type": "abuse"},
    "identity.complaint-without-feedback.json": {"feedback_type": None},
    "publishing.delivery.json": {
        "reason": None,
        "smtp_status_code": 250,
        "smtp_enhanced_status_code": "2.6.0",
        "smtp_response": "250 2.6.0 Message received",
        "session_id": None,
    },
    "identity.delivery.json": {
        "reason": None,
        "smtp_status_code": 250,
        "smtp_enhanced_status_code": None,
        "smtp_response": "250 ok:  Message 64111812 accepted",
        "session_id": None,
    },
    "publishing.delivery-delay.json": {
        "reason": "TransientCommunicationFailure",
        "smtp_status_code": 421,
        "smtp_enhanced_status_code": "4.4.1",
        "smtp_response": "smtp; 421 4.4.1 Unable to connect to remote host",
        "bounce_class": None,
    },
    "publishing.send.json": {
        "subject": "Message sent from Amazon SES",
        "from_address": "sender@example.com",
        "from_name": None,
        "to": ["recipient@example.com"],
        "cc": [],
        "bcc": [],
        "reply_to": None,
    },
    "publishing.reject.json": {"reason": "Bad content", **SMTP_NONE, "error_code": None},
    "publishing.rendering-failure.json": {
        "reason": "Attribute 'attributeName' is not present in the rendering data.",
        **SMTP_NONE,
        "error_code": None,
    },
    "publishing.open.json": {
        "subject": "Message sent from Amazon SES",
        "first": None,
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 "
        "(KHTML, like Gecko) Mobile/14G60",
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": "192.0.2.1",
    },
    "publishing.click.json": {
        "subject": "Message sent from Amazon SES",
        "first": None,
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/60.0.3112.90 Safari/537.36",
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": "192.0.2.1",
        "url": "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html",
        "link_index": None,
    },
    "publishing.subscription.json": {},
}


@pytest.mark.parametrize(("name", "details"), DETAILS.items(), ids=list(DETAILS))
def test_fixture_details(name: str, details: dict[str, Any]) -> None:
    assert [dict(event.details) for event in fixture_events(FIXTURES / name)] == [details] * len(EXPECTED[name][1])


def test_identity_send_details_parse_display_names() -> None:
    message = json.loads((FIXTURES / "identity.delivery.json").read_text()) | {"notificationType": "Send"}
    [event] = normalise_message(message)
    assert (event.details["from_address"], event.details["from_name"], event.details["to"]) == (
        "john@example.com", "John Doe", ["jane@example.com"]
    )  # fmt: skip


def test_tags_are_flattened_name_equals_value_in_order() -> None:
    [event] = fixture_events(FIXTURES / "publishing.delivery.json")
    assert event.tags == (
        "ses:configuration-set=ConfigSet",
        "ses:source-ip=192.0.2.0",
        "ses:from-domain=example.com",
        "ses:caller-identity=ses_user",
        "ses:outgoing-ip=192.0.2.0",
        "myCustomTag1=myCustomTagValue1",
        "myCustomTag2=myCustomTagValue2",
    )


def test_tags_with_several_values_and_odd_shapes() -> None:
    [event] = normalise_message({"eventType": "Send", "mail": {"messageId": "m", "tags": {"a": ["1", "2"], "b": "3"}}})
    assert event.tags == ("a=1", "a=2", "b=3")


def test_identity_notifications_carry_no_tags() -> None:
    assert all(event.tags == () for event in fixture_events(FIXTURES / "identity.bounce-with-dsn.json"))


def test_the_real_aws_notification_normalises() -> None:
    [event] = Ses().normalise(delivery(AWS_NOTIFICATION))
    assert (event.event_id, event.event_type, event.recipient, event.message_id) == (
        "e2857e84-192d-54ff-9477-277db1208553:bounce@simulator.amazonses.com",
        "message.hard_bounced",
        "bounce@simulator.amazonses.com",
        "0107017cda9fa5c6-be6757c7-8954-4f49-bea4-259cb6e602de-000000",
    )
    assert event.raw == json.loads(AWS_NOTIFICATION)["Message"]
    assert fits_schema(event)


# --- 9. normaliser: mapping decisions ---------------------------------------------------------------------

BOUNCE = json.loads((FIXTURES / "publishing.bounce.json").read_text())


def bounce(kind: str | None, subtype: str | None) -> CanonicalEvent:
    details = {key: value for key, value in {"bounceType": kind, "bounceSubType": subtype}.items() if value}
    [event] = normalise_message(BOUNCE | {"bounce": BOUNCE["bounce"] | details})
    return event


@pytest.mark.parametrize(
    ("kind", "subtype", "event_type", "bounce_class"),
    [
        ("Permanent", "General", "message.hard_bounced", "Permanent/General"),
        ("Permanent", "NoEmail", "message.hard_bounced", "Permanent/NoEmail"),
        ("Transient", "MailboxFull", "message.soft_bounced", "Transient/MailboxFull"),
        ("Transient", "General", "message.soft_bounced", "Transient/General"),
        ("Undetermined", "Undetermined", "message.soft_bounced", "Undetermined/Undetermined"),
        ("Permanent", "Suppressed", "message.suppressed", None),
        ("Permanent", "OnAccountSuppressionList", "message.suppressed", None),
        ("Bouncy", "General", UNMAPPED, None),
    ],
)
def test_bounce_classes(kind: str, subtype: str, event_type: str, bounce_class: str | None) -> None:
    event = bounce(kind, subtype)
    assert (event.event_type, event.details.get("bounce_class")) == (event_type, bounce_class)
    assert fits_schema(event)


def test_suppressed_bounce_says_which_list() -> None:
    assert dict(bounce("Permanent", "OnAccountSuppressionList").details) == {"reason": "OnAccountSuppressionList"}


def test_a_complaint_on_the_account_suppression_list_is_suppressed() -> None:
    complaint = json.loads((FIXTURES / "publishing.complaint.json").read_text())
    complaint["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    [event] = normalise_message(complaint)
    assert (event.event_type, dict(event.details)) == ("message.suppressed", {"reason": "OnAccountSuppressionList"})


SUBSCRIPTION = json.loads((FIXTURES / "publishing.subscription.json").read_text())


def preferences(unsubscribe_all: bool, *statuses: tuple[str, str]) -> dict[str, Any]:
    topics = [{"topicName": name, "subscriptionStatus": status} for name, status in statuses]
    return {"unsubscribeAll": unsubscribe_all, "topicSubscriptionStatus": topics}


@pytest.mark.parametrize(
    ("old", "new", "event_type"),
    [
        (preferences(False), preferences(True), "message.unsubscribed"),
        (preferences(False, ("news", "OptIn")), preferences(False, ("news", "OptOut")), "message.unsubscribed"),
        (None, preferences(False, ("news", "OptOut")), "message.unsubscribed"),
        (preferences(False, ("news", "OptOut")), preferences(False, ("news", "OptIn")), UNMAPPED),
        (preferences(False, ("a", "OptOut")), preferences(False, ("a", "OptOut"), ("b", "OptIn")), UNMAPPED),
        (preferences(True), preferences(False), UNMAPPED),
    ],
)
def test_subscription_changes(old: dict[str, Any] | None, new: dict[str, Any], event_type: str) -> None:
    change = {"contactList": "L", "timestamp": "2022-01-12T01:00:17.910Z", "newTopicPreferences": new}
    [event] = normalise_message(SUBSCRIPTION | {"subscription": change | ({"oldTopicPreferences": old} if old else {})})
    assert (event.event_type, event.provider_event) == (event_type, "Subscription")


@pytest.mark.parametrize(
    "message",
    [
        {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed ..."},
        {"notificationType": "Received", "mail": {"messageId": "inbound-1", "timestamp": "2015-09-11T20:32:33.936Z"}},
        {"eventType": "Teleport", "mail": {"messageId": "m-1"}, "teleport": {"planet": "Mars"}},
    ],
    ids=["subscription-succeeded", "received", "unknown"],
)
def test_unknown_ses_events_are_unmapped_not_dropped(message: dict[str, Any]) -> None:
    [event] = normalise_message(message)
    assert event.event_type == UNMAPPED
    assert (event.provider_event, event.raw) == (
        message.get("eventType", message.get("notificationType")),
        json.dumps(message),
    )
    assert event.key == (message.get("mail", {}).get("messageId") or SNS_ID)
    assert dict(event.details) == {}
    assert fits_schema(event)


def test_a_message_without_its_own_timestamp_falls_back_to_sns() -> None:
    [event] = normalise_message({"eventType": "Send", "mail": {"messageId": "m"}})
    assert event.occurred_at == datetime(2025, 8, 8, 20, 15, 12, tzinfo=UTC)


def test_fan_out_repeats_no_recipient_and_skips_entries_without_an_address() -> None:
    entries = [{"emailAddress": "a@example.com"}, {"emailAddress": "a@example.com"}, {"status": "5.1.1"}, 7]
    events = normalise_message(BOUNCE | {"bounce": BOUNCE["bounce"] | {"bouncedRecipients": entries}})
    assert [event.event_id for event in events] == [f"{SNS_ID}:a@example.com"]


def test_fan_out_with_no_recipient_at_all_is_one_event_keyed_by_the_sns_id() -> None:
    [event] = normalise_message(BOUNCE | {"bounce": BOUNCE["bounce"] | {"bouncedRecipients": []}})
    assert (event.event_id, event.recipient, event.key) == (SNS_ID, None, MID)


def test_message_level_events_name_a_recipient_only_where_the_message_had_one() -> None:
    send = json.loads((FIXTURES / "publishing.send.json").read_text())
    send["mail"]["destination"] = ["a@example.com", "b@example.com"]
    [event] = normalise_message(send)
    assert (event.event_id, event.recipient) == (SNS_ID, None)


def test_event_ids_are_deterministic_across_retries() -> None:
    first = fixture_events(FIXTURES / "identity.bounce-without-dsn.json")
    again = fixture_events(FIXTURES / "identity.bounce-without-dsn.json")
    assert [event.event_id for event in first] == [event.event_id for event in again]
    assert len({event.event_id for event in first}) == len(first)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(encode(notification("not json")), id="message-not-json"),
        pytest.param(encode(notification("[1, 2]")), id="message-json-array"),
        pytest.param(encode(notification({"mail": {"messageId": "m"}})), id="no-event-type"),
        pytest.param(encode(notification({"eventType": 7})), id="event-type-not-a-string"),
        pytest.param(encode(notification({"eventType": "Send", "mail": {"timestamp": "yesterday"}})), id="bad-time"),
        pytest.param(
            encode(notification({"eventType": "Send", "mail": {"timestamp": "2025-08-08T20:15"}})), id="naive"
        ),
        pytest.param(encode(notification({"eventType": "Send"}, Timestamp=None)), id="no-time-at-all"),
        pytest.param(encode(notification(Message=None)), id="no-message"),
        pytest.param(encode(notification({"eventType": "Send"}, MessageId=None)), id="no-message-id"),
        pytest.param(b"not json", id="body-not-json"),
    ],
)
def test_verified_but_unusable_bodies_are_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        Ses().normalise(delivery(body))


# --- 10. SesSender, sign_body, sns_headers (bridge send-test) ---------------------------------------------

SENDER = SesSender()
SEND_TEST_SOURCE = source(
    topic_arns=[EXAMPLE_TOPIC_ARN], certificates={SEND_TEST_CERT_URL: CERT.decode()}, secrets=[private_pem(KEY)]
)


@pytest.mark.parametrize("event_type", sorted(EXAMPLE_EVENTS))
def test_examples_signed_with_sign_body_verify_and_normalise_to_their_type(event_type: str) -> None:
    ses = Ses(fetch_certificate=FakeGet({}))
    body = sign_body(SENDER.example(event_type, datetime.now(UTC)), private_pem(KEY))
    authenticate(ses, Headers(sns_headers(body)), body, SEND_TEST_SOURCE, NOW)
    [event] = ses.normalise(delivery(body))
    assert event.event_type == event_type
    assert event.recipient == "recipient@example.com"
    assert fits_schema(event)


@pytest.mark.parametrize("event_type", sorted(EXAMPLE_EVENTS))
def test_examples_signed_by_the_sender_verify_against_the_pinned_certificate(event_type: str) -> None:
    """What `bridge send-test` posts: signed with the source's first secret, no fetch needed."""
    fetch = FakeGet({})
    body, headers = SENDER.sign(SENDER.example(event_type, datetime.now(UTC)), SEND_TEST_SOURCE, NOW)
    assert headers == sns_headers(body)
    run_verify(body, src=SEND_TEST_SOURCE, fetch=fetch, headers=headers)
    assert fetch.calls == []


def test_the_sender_signs_with_the_first_secret() -> None:
    src = source(
        topic_arns=[EXAMPLE_TOPIC_ARN],
        certificates={SEND_TEST_CERT_URL: OTHER_CERT.decode()},
        secrets=[private_pem(KEY), private_pem(OTHER_KEY)],
    )
    body, headers = SENDER.sign(SENDER.example("message.delivered", datetime.now(UTC)), src, NOW)
    rejected(body, src=src, headers=headers)  # signed with KEY, not OTHER_KEY


def test_the_sender_needs_a_secret_to_sign_with() -> None:
    with pytest.raises(ValueError, match=r"secrets: .*PEM RSA private key"):
        SENDER.sign(SENDER.example("message.delivered", datetime.now(UTC)), SOURCE, NOW)


def test_the_delivered_example_wraps_an_ses_delivery_event_for_the_example_topic() -> None:
    envelope = json.loads(SENDER.example("message.delivered", datetime(2025, 8, 8, 20, 15, 12, tzinfo=UTC)))
    assert (envelope["Type"], envelope["TopicArn"], envelope["Timestamp"]) == (
        "Notification", EXAMPLE_TOPIC_ARN, "2025-08-08T20:15:12.000Z"
    )  # fmt: skip
    assert json.loads(envelope["Message"])["eventType"] == "Delivery"


@pytest.mark.parametrize("version", ["1", "2"])
def test_sign_body_matches_the_independent_signer(version: str) -> None:
    body = sign_body(encode(notification()), private_pem(KEY), version=version)
    envelope = json.loads(body)
    assert envelope["SigningCertURL"] == SEND_TEST_CERT_URL
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    KEY.public_key().verify(
        base64.b64decode(envelope["Signature"]), string_to_sign(envelope), padding.PKCS1v15(), algorithm
    )


def test_sign_body_keeps_a_certificate_url_the_envelope_names() -> None:
    body = sign_body(encode(notification(SigningCertURL=CERT_URL)), private_pem(KEY))
    run_verify(body)


def test_sns_headers_are_those_of_a_signed_envelope() -> None:
    body = sign_body(encode(notification()), private_pem(KEY))
    assert sns_headers(body) == {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": SNS_ID,
        "x-amz-sns-topic-arn": TOPIC,
        "Content-Type": "text/plain; charset=UTF-8",
    }


def test_sns_headers_say_why_an_unsigned_body_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="sign_body"):
        sns_headers(SENDER.example("message.delivered", datetime.now(UTC)))


def test_an_example_ses_does_not_send_is_refused() -> None:
    with pytest.raises(ValueError, match=r"SES sends no message\.inbound"):
        SENDER.example("message.inbound", datetime.now(UTC))


def test_sign_body_needs_a_pem_private_key() -> None:
    with pytest.raises(ValueError, match="PEM RSA private keys"):
        sign_body(encode(notification()), "whsec_not-a-key")


def test_signing_key_fingerprints_differ() -> None:
    """Guards the fixtures above: the two test keys are distinct, so 'wrong certificate' means something."""
    fingerprints = {hashlib.sha256(pem).hexdigest() for pem in (CERT, OTHER_CERT)}
    assert len(fingerprints) == 2


def reason_of(body: bytes, **kwargs: Any) -> str:
    fetch = kwargs.pop("fetch", None) or FakeGet()
    with pytest.raises(SignatureInvalid) as caught:
        run_verify(body, fetch=fetch, **kwargs)
    return caught.value.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"not json", "malformed_body", id="not-json"),
        pytest.param(b"[]", "malformed_body", id="not-an-object"),
        pytest.param(encode(GOOD | {"Type": "Other"}), "malformed_body", id="unknown-type"),
        pytest.param(encode({k: v for k, v in GOOD.items() if k != "Signature"}), "malformed_body", id="no-signature"),
        pytest.param(encode(GOOD | {"Signature": "not base64!"}), "malformed_body", id="signature-not-base64"),
        pytest.param(encode(signed(notification(TopicArn=OTHER_TOPIC))), "topic_not_allowed", id="topic"),
        pytest.param(encode(GOOD | {"SignatureVersion": "3"}), "unsupported_algorithm", id="version-3"),
        pytest.param(
            encode(signed(notification(), url="https://attacker.example/x.pem")), "certificate_untrusted", id="off-sns"
        ),
        pytest.param(encode(signed(notification(), key=OTHER_KEY)), "no_matching_signature", id="wrong-key"),
        pytest.param(encode(GOOD | {"MessageId": "another-id"}), "no_matching_signature", id="tampered"),
    ],
)
def test_reasons(body: bytes, reason: str) -> None:
    """SNS has no timestamp window (no stale case) and signs inside the body (no missing header)."""
    assert reason_of(body) == reason


def test_certificate_reasons() -> None:
    assert reason_of(encode(GOOD), fetch=FakeGet({})) == "certificate_fetch_failed"  # SNS answers 404
    assert reason_of(encode(GOOD), fetch=FakeGet({CERT_URL: b"not a certificate"})) == "certificate_untrusted"
    assert reason_of(encode(GOOD), headers={"x-amz-sns-message-type": "SubscriptionConfirmation"}) == (
        "malformed_header"
    )
    with pytest.raises(SignatureInvalid) as caught:
        Ses(fetch_certificate=FakeGet()).verify(Headers(), encode(GOOD), SOURCE, NOW)
    assert caught.value.reason == "certificate_fetch_failed"
