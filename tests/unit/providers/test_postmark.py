"""Postmark provider: Basic auth and secret-header checks, payload mapping (docs/providers.md#postmark-postmark)."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge import config
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS, auth, postmark
from bridge.providers.base import ProviderIO
from bridge.providers.postmark import Postmark, PostmarkSender, PostmarkSource, credential_headers
from bridge.settings import PRIVATE_HEADERS
from tests.support import providers as helpers
from tests.support.providers import Pairs, file_name, fits_schema, fixture_files

POSTMARK = Postmark()
SENDER = PostmarkSender()
FIXTURES = helpers.FIXTURES / "postmark"
FIXTURE_FILES = fixture_files("postmark")

USER, PASSWORD = "postmark", "correct horse battery staple"
OLD_USER, OLD_PASSWORD = "postmark-old", "Tr0ub4dor&3"
HEADER = "X-Webhook-Token"
TOKEN, OLD_TOKEN = "tok_current-9f8e7d", "tok_previous-1a2b3c"
RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)
NOW_DT = datetime(2025, 8, 8, 20, 15, 12, 345678, tzinfo=UTC)
NOW = NOW_DT.timestamp()


# --- helpers -------------------------------------------------------------------------------------


def raw(*pairs: tuple[str, str]) -> Pairs:
    """Raw headers with UTF-8 values, as a real client sends them."""
    return helpers.raw(*pairs, encoding="utf-8")


def basic(user: str = USER, password: str = PASSWORD) -> tuple[str, str]:
    """Computed here, independently of the provider module (RFC 7617)."""
    return "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def token(value: str = TOKEN) -> tuple[str, str]:
    return HEADER, value


def source(
    *, basic_auth: list[tuple[str, str]] | None = None, header: str | None = None, secrets: list[str] | None = None
) -> PostmarkSource:
    options: dict[str, Any] = {}
    if basic_auth is not None:
        options["basic_auth"] = [{"username": user, "password": password} for user, password in basic_auth]
    if header is not None:
        options["header"] = header
    return PostmarkSource.model_validate(
        {"name": "pm", "provider": "postmark", "secrets": secrets or [], "options": options}
    )


BASIC = source(basic_auth=[(USER, PASSWORD)])
ROTATING_BASIC = source(basic_auth=[(USER, PASSWORD), (OLD_USER, OLD_PASSWORD)])
HEADER_ONLY = source(header=HEADER, secrets=[TOKEN])
ROTATING_HEADER = source(header=HEADER, secrets=[TOKEN, OLD_TOKEN])
BOTH = source(basic_auth=[(USER, PASSWORD)], header=HEADER, secrets=[TOKEN])


def verify(pairs: Pairs, src: PostmarkSource = BASIC, body: bytes = b"{}", now: float = NOW) -> None:
    POSTMARK.verify(Headers(raw=pairs), body, src, now)


def accepts(pairs: Pairs, src: PostmarkSource) -> bool:
    try:
        verify(pairs, src)
    except SignatureInvalid:
        return False
    return True


def normalise_all(body: bytes) -> list[CanonicalEvent]:
    return POSTMARK.normalise(Delivery("pm-prod", "postmark", Headers(raw=[]), body, RECEIVED))


def normalise(body: bytes) -> CanonicalEvent:
    [event] = normalise_all(body)
    return event


def record(**fields: Any) -> bytes:
    payload = {
        "RecordType": "Delivery",
        "MessageID": "m-1",
        "Recipient": "user@example.com",
        "DeliveredAt": "2025-08-08T20:15:00Z",
    } | fields
    return json.dumps({key: value for key, value in payload.items() if value is not None}).encode()


def bounce(bounce_type: str | None, **fields: Any) -> bytes:
    defaults = {"ID": 7, "Email": "user@example.com", "BouncedAt": "2025-08-08T20:15:00Z"}
    return record(RecordType="Bounce", Type=bounce_type, **(defaults | fields))


def change(suppress: object, reason: str | None = "ManualSuppression", origin: str | None = "Recipient") -> bytes:
    return record(
        RecordType="SubscriptionChange",
        ChangedAt="2025-08-08T20:15:00Z",
        SuppressSending=suppress,
        SuppressionReason=reason,
        Origin=origin,
    )


def fixture(name: str) -> CanonicalEvent:
    return normalise((FIXTURES / name).read_bytes())


# --- registration and configuration --------------------------------------------------------------


def test_registered_under_its_name() -> None:
    spec = PROVIDERS["postmark"]
    assert (spec.source, spec.sender) == (PostmarkSource, PostmarkSender)
    assert isinstance(spec.build(ProviderIO.default()), Postmark)


def config_error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        config.parse_source({"name": "pm", "provider": "postmark", **fields})
    return str(caught.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({}, "options: Postmark does not sign; configure basic_auth, header, or both", id="nothing"),
        pytest.param({"options": {"basic_auth": []}}, "configure basic_auth, header, or both", id="empty-list"),
        pytest.param(
            {"options": {"header": HEADER}}, "secrets: options.header needs at least one secret", id="no-secrets"
        ),
        pytest.param(
            {"secrets": [TOKEN], "options": {"basic_auth": [{"username": USER, "password": PASSWORD}]}},
            "secrets: only used as the accepted values of options.header",
            id="secrets-without-header",
        ),
        pytest.param({"secrets": [TOKEN], "options": {"header": "X Token"}}, "options.header:", id="bad-header-name"),
        pytest.param(
            {
                "secrets": [TOKEN],
                "options": {"header": "authorization", "basic_auth": [{"username": "u", "password": "p"}]},
            },
            "options.header: Authorization already carries basic_auth",
            id="header-clashes-with-basic",
        ),
        pytest.param(
            {"options": {"basic_auth": [{"username": "u"}]}}, "options.basic_auth.0.password", id="no-password"
        ),
        pytest.param(
            {"options": {"basic_auth": [{"username": "u", "password": ""}]}},
            "basic_auth.0.password: the password is empty",
            id="empty-pw",
        ),
        pytest.param(
            {"options": {"basic_auth": [{"username": "", "password": "p"}]}}, "basic_auth.0.username", id="no-user"
        ),
        pytest.param(
            {"options": {"basic_auth": [{"username": "a:b", "password": "p"}]}},
            "cannot contain ':'",
            id="colon-in-user",
        ),
        pytest.param(
            {"options": {"header": HEADER, "ip": "1.2.3.4"}, "secrets": [TOKEN]}, "options.ip: unknown key", id="extra"
        ),
        pytest.param({"secrets": [" padded"], "options": {"header": HEADER}}, "secrets.0:", id="padded-secret"),
        pytest.param({"secrets": [TOKEN, "a\nb"], "options": {"header": HEADER}}, "secrets.1:", id="control-in-secret"),
        pytest.param(
            {"tolerance_seconds": 300, "secrets": [TOKEN], "options": {"header": HEADER}},
            "tolerance_seconds: Postmark sends no timestamp",
            id="tolerance-has-no-meaning",
        ),
    ],
)
def test_check_rejects(fields: dict[str, Any], message: str) -> None:
    assert message in config_error(**fields)


def test_check_rejects_in_the_model_too() -> None:
    with pytest.raises(ValidationError, match="options: Postmark does not sign"):
        PostmarkSource.model_validate({"name": "pm", "provider": "postmark"})


def test_source_has_typed_options() -> None:
    options = BOTH.options
    assert isinstance(options, postmark.PostmarkOptions)
    assert (options.header, [c.username for c in options.basic_auth]) == (HEADER, [USER])
    assert PASSWORD not in repr(options)  # SecretStr: the password does not leak into logs


@pytest.mark.parametrize(
    ("src", "private"),
    [
        (BASIC, PRIVATE_HEADERS),
        (HEADER_ONLY, PRIVATE_HEADERS | {"x-webhook-token"}),
        (BOTH, PRIVATE_HEADERS | {"x-webhook-token"}),
    ],
    ids=["basic", "header", "both"],
)
def test_private_headers_add_the_secret_header(src: PostmarkSource, private: frozenset[str]) -> None:
    assert src.private_headers() == private


# --- Basic auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(basic()[1], id="valid"),
        pytest.param("basic " + basic()[1].split()[1], id="lower-case-scheme"),
        pytest.param("BASIC  " + basic()[1].split()[1] + " ", id="upper-case-scheme-extra-spaces"),
    ],
)
def test_basic_accepts(authorization: str) -> None:
    verify(raw(("Authorization", authorization)))


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(basic(USER, "wrong")), id="wrong-password"),
        pytest.param(raw(basic("someone", PASSWORD)), id="wrong-username"),
        pytest.param(raw(basic(USER, PASSWORD + "x")), id="password-plus-suffix"),
        pytest.param(raw(basic(USER, PASSWORD[:-1])), id="password-prefix"),
        pytest.param(raw(basic(USER.upper(), PASSWORD)), id="username-case"),
        pytest.param(raw(basic(USER, "")), id="empty-password"),
        pytest.param([], id="missing-header"),
        pytest.param(raw(basic(), basic()), id="two-authorization-headers"),
        pytest.param(raw(("Authorization", "Bearer " + basic()[1].split()[1])), id="bearer-scheme"),
        pytest.param(raw(("Authorization", "Basic")), id="no-credentials"),
        pytest.param(raw(("Authorization", "Basic not*base64!")), id="not-base64"),
        pytest.param(raw(("Authorization", "Basic " + base64.b64encode(b"nocolon").decode())), id="no-colon"),
        pytest.param(raw(("Authorization", "Basic \u00e9\u00e9\u00e9\u00e9")), id="non-ascii-token"),
        pytest.param(raw((HEADER, TOKEN)), id="secret-header-instead"),
    ],
)
def test_basic_rejects(pairs: Pairs) -> None:
    with pytest.raises(SignatureInvalid):
        verify(pairs)


@pytest.mark.parametrize(("user", "password"), [(USER, PASSWORD), (OLD_USER, OLD_PASSWORD)])
def test_basic_rotation_either_credential(user: str, password: str) -> None:
    verify(raw(basic(user, password)), ROTATING_BASIC)


@pytest.mark.parametrize(
    ("user", "password"),
    [(USER, OLD_PASSWORD), (OLD_USER, PASSWORD), ("third", "credential")],
    ids=["current-user-old-password", "old-user-current-password", "third"],
)
def test_basic_rotation_needs_username_and_password_of_one_credential(user: str, password: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify(raw(basic(user, password)), ROTATING_BASIC)


def test_basic_password_with_colon_and_non_ascii() -> None:
    src = source(basic_auth=[("pm", "pä:ss wörd")])
    verify(raw(basic("pm", "pä:ss wörd")), src)  # str compare_digest would raise TypeError on non-ASCII
    assert not accepts(raw(basic("pm", "pa:ss word")), src)


@pytest.mark.parametrize("sent", ["p%40ss%3Aword", "p@ss:word"], ids=["percent-encoded", "decoded"])
def test_basic_url_userinfo_in_either_form(sent: str) -> None:
    """Unconfirmed whether Postmark percent-decodes the URL's userinfo before encoding it."""
    verify(raw(basic("pm", sent)), source(basic_auth=[("pm", "p@ss:word")]))


def test_basic_compares_every_credential_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    same = auth.same

    def counting(got: bytes, want: bytes) -> bool:
        calls.append(1)
        return same(got, want)

    monkeypatch.setattr(postmark, "same", counting)
    src = source(basic_auth=[(USER, PASSWORD), (OLD_USER, OLD_PASSWORD), ("third", "credential")])
    counts = []
    for pairs in (raw(basic()), raw(basic("third", "credential")), raw(basic("nobody", "nothing"))):
        calls.clear()
        accepts(pairs, src)
        counts.append(len(calls))
    assert counts == [12, 12, 12]  # 3 credentials * (username, password) * (as sent, decoded)


def test_compares_fixed_length_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    lengths: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        lengths.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)  # what auth.same calls
    assert not accepts(raw(basic("", "x" * 1000), token("y" * 1000)), BOTH)
    assert lengths and set(lengths) == {(32, 32)}


# --- secret header -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(token()), id="valid"),
        pytest.param(raw(("x-webhook-token", TOKEN)), id="lower-case-name"),
        pytest.param(raw((HEADER, f"  {TOKEN}\t")), id="surrounding-whitespace"),
    ],
)
def test_header_accepts(pairs: Pairs) -> None:
    verify(pairs, HEADER_ONLY)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(token("tok_wrong")), id="wrong-value"),
        pytest.param(raw(token(TOKEN[:-1])), id="prefix-of-secret"),
        pytest.param(raw(token(TOKEN + "0")), id="secret-plus-suffix"),
        pytest.param(raw(token("")), id="empty"),
        pytest.param([], id="missing"),
        pytest.param(raw(("X-Other-Token", TOKEN)), id="other-header"),
        pytest.param(raw(token(), token()), id="repeated"),
        pytest.param(raw(basic()), id="basic-instead"),
    ],
)
def test_header_rejects(pairs: Pairs) -> None:
    with pytest.raises(SignatureInvalid):
        verify(pairs, HEADER_ONLY)


@pytest.mark.parametrize("value", [TOKEN, OLD_TOKEN])
def test_header_rotation_either_secret(value: str) -> None:
    verify(raw(token(value)), ROTATING_HEADER)


def test_header_secret_in_utf8() -> None:
    src = source(header=HEADER, secrets=["jeton-élevé"])
    verify(raw(token("jeton-élevé")), src)  # sent as UTF-8 bytes, which Headers reads as latin-1
    assert not accepts(raw(token("jeton-eleve")), src)


def test_rejection_does_not_name_the_secret_header_or_user() -> None:
    for pairs, src in ((raw(token("nope")), HEADER_ONLY), ([], HEADER_ONLY), (raw(basic(USER, "x")), BASIC)):
        with pytest.raises(SignatureInvalid) as caught:
            verify(pairs, src)
        assert HEADER.lower() not in str(caught.value).lower()
        assert USER not in str(caught.value)


# --- both methods, body, time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "ok"),
    [
        pytest.param(raw(basic(), token()), True, id="both"),
        pytest.param(raw(basic()), False, id="basic-only"),
        pytest.param(raw(token()), False, id="header-only"),
        pytest.param(raw(basic(USER, "x"), token()), False, id="wrong-basic"),
        pytest.param(raw(basic(), token("x")), False, id="wrong-header"),
    ],
)
def test_both_configured_both_must_pass(pairs: Pairs, ok: bool) -> None:
    assert accepts(pairs, BOTH) is ok


def test_body_is_not_authenticated() -> None:
    """No signature: TLS protects the body in transit (documented), so any body passes here."""
    verify(raw(basic()), body=b'{"RecordType":"Delivery","tampered":true}')


@pytest.mark.parametrize("now", [0.0, NOW - 86_400 * 365, NOW + 86_400 * 365])
def test_no_timestamp_to_be_stale(now: float) -> None:
    verify(raw(basic()), now=now)


# --- sign and credential_headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param(f"{USER}:{PASSWORD}", dict([basic()]), id="user-pass"),
        pytest.param("basic:pm:pa:ss", dict([basic("pm", "pa:ss")]), id="explicit-basic-colon-in-password"),
        pytest.param("basic:header:x", dict([basic("header", "x")]), id="user-named-header"),
        pytest.param(f"header:{HEADER}:{TOKEN}", {HEADER: TOKEN}, id="header"),
        pytest.param(f"header:{HEADER}:a:b", {HEADER: "a:b"}, id="header-value-with-colon"),
        pytest.param(f"{USER}:{PASSWORD}\nheader:{HEADER}:{TOKEN}", dict([basic(), token()]), id="both"),
    ],
)
def test_credential_headers(secret: str, expected: dict[str, str]) -> None:
    assert credential_headers(secret) == {"Content-Type": "application/json", **expected}


@pytest.mark.parametrize("secret", [TOKEN, ""], ids=["bare-value", "empty"])
def test_credential_headers_without_a_usable_credential_is_not_possible(secret: str) -> None:
    with pytest.raises(ValueError, match="header:<Header-Name>:<value>"):
        credential_headers(secret)


@pytest.mark.parametrize("secret", ["header::value", "header:X Token:value", "header:novalue"])
def test_credential_headers_malformed_header_credential(secret: str) -> None:
    with pytest.raises(ValueError, match="header:<Header-Name>:<value>"):
        credential_headers(secret)


@pytest.mark.parametrize(
    "src",
    [BASIC, ROTATING_BASIC, HEADER_ONLY, ROTATING_HEADER, BOTH],
    ids=["basic", "basic2", "header", "header2", "both"],
)
def test_sender_signs_what_verify_accepts(src: PostmarkSource) -> None:
    body, headers = SENDER.sign(b"{}", src, NOW)
    assert body == b"{}"  # Postmark signs nothing in the body
    verify(raw(*headers.items()), src)


def test_sender_uses_the_first_credential_and_secret() -> None:
    src = source(basic_auth=[(USER, PASSWORD), (OLD_USER, OLD_PASSWORD)], header=HEADER, secrets=[TOKEN, OLD_TOKEN])
    assert SENDER.sign(b"{}", src, NOW)[1] == {"Content-Type": "application/json", **dict([basic(), token()])}


# --- normalise: the fixtures ---------------------------------------------------------------------

MID = "883953f4-6105-42a2-a16a-77a8eac79483"
ZERO = "00000000-0000-0000-0000-000000000000"
DOCS_TIME = datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
A_B = {"a_key": "a_value", "b_key": "b_value"}
EXAMPLE_META = {"example": "value", "example_2": "value"}
OPEN_DETAILS = {
    "subject": None,
    "first": True,
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/35.0.1916.153 Safari/537.36",
    "client_name": "Chrome 35.0.1916.153",
    "client_type": "WebMail",
    "device_type": None,
    "is_bot": None,
    "ip": "188.2.95.4",
}
TEST_DELIVERY = {"reason": None, "smtp_status_code": None, "smtp_enhanced_status_code": None}

# file: (event_type, provider_event, event_id, key, recipient, occurred_at, tags, metadata, details)
EXPECTED: dict[str, tuple[Any, ...]] = {
    "Delivery.json": (
        "message.delivered", "Delivery", f"Delivery:{MID}:john@example.com:2019-11-05T16:33:54.907025+00:00",
        MID, "john@example.com", DOCS_TIME, ("welcome-email",), A_B,
        {**TEST_DELIVERY, "smtp_response": "Test delivery webhook details", "session_id": None},
    ),
    "Delivery.dashboard-test.json": (
        "message.delivered", "Delivery", f"Delivery:{ZERO}:john@example.com:2026-02-13T18:19:43+00:00",
        ZERO, "john@example.com", datetime(2026, 2, 13, 18, 19, 43, tzinfo=UTC), ("welcome-email",), EXAMPLE_META,
        {**TEST_DELIVERY, "smtp_response": "Test delivery webhook details", "session_id": None},
    ),
    "Delivery.smtp-reply.json": (
        "message.delivered", "Delivery",
        "Delivery:5f0e8c2a-1d3b-4c5e-9a7f-2b4d6e8f0a1c:jane@example.org:2025-08-08T18:15:12.123456+00:00",
        "5f0e8c2a-1d3b-4c5e-9a7f-2b4d6e8f0a1c", "jane@example.org",
        datetime(2025, 8, 8, 18, 15, 12, 123456, tzinfo=UTC), ("invoice",),
        {"invoice_id": "1234", "customer": "cus_8f3k2"},
        {
            "reason": None, "smtp_status_code": 250, "smtp_enhanced_status_code": "2.0.0",
            "smtp_response": "smtp;250 2.0.0 OK  1754676912 d2e1a72fcca58-76bc3a4b1f0si123456b3a.42 - gsmtp",
            "session_id": None,
        },
    ),
    "Bounce.HardBounce.json": (
        "message.hard_bounced", "Bounce/HardBounce", "Bounce:4323372036854775807", MID, "john@example.com",
        DOCS_TIME, ("Test",), A_B,
        {
            "reason": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "smtp_status_code": None, "smtp_enhanced_status_code": None, "smtp_response": "Test bounce details",
            "bounce_class": "HardBounce",
        },
    ),
    "Bounce.SoftBounce.json": (
        "message.soft_bounced", "Bounce/SoftBounce", "Bounce:4323372036854775808",
        "7a1c2e3f-4b5d-4e6f-8a9b-0c1d2e3f4a5b", "full@example.com",
        datetime(2025, 8, 8, 20, 15, 30, 500000, tzinfo=UTC), ("welcome-email",), {"customer_id": "cus_8f3k2"},
        {
            "reason": "Unable to temporarily deliver message (i.e. mailbox full, account disabled, exceeds quota, "
            "out of disk space).",
            "smtp_status_code": 452, "smtp_enhanced_status_code": "4.2.2",
            "smtp_response": "smtp;452 4.2.2 The email account that you tried to reach is over quota.",
            "bounce_class": "SoftBounce",
        },
    ),
    "Bounce.Transient.json": (
        "message.soft_bounced", "Bounce/Transient", "Bounce:4323372036854775809",
        "8b2d3f4a-5c6e-4f7a-9b0c-1d2e3f4a5b6c", "slow@example.net",
        datetime(2014, 8, 1, 13, 28, 10, 273539, tzinfo=timezone(timedelta(hours=-4))), (), {},
        {
            "reason": "The server could not temporarily deliver your message (ex: Message is delayed due to network "
            "troubles).",
            "smtp_status_code": 421, "smtp_enhanced_status_code": "4.4.2",
            "smtp_response": "smtp;421 4.4.2 Connection timed out", "bounce_class": "Transient",
        },
    ),
    "Bounce.AutoResponder.json": (
        "message.auto_replied", "Bounce/AutoResponder", "Bounce:4323372036854775810",
        "9c3e4a5b-6d7f-4a8b-8c1d-2e3f4a5b6c7d", "away@example.com", datetime(2025, 8, 9, 7, 0, tzinfo=UTC),
        ("newsletter",), {}, {},
    ),
    "Bounce.Subscribe.json": (
        UNMAPPED, "Bounce/Subscribe", "Bounce:4323372036854775811", "0d4f5b6c-7e8a-4b9c-9d2e-3f4a5b6c7d8e",
        "fan@example.com", datetime(2025, 8, 9, 8, 0, tzinfo=UTC), (), {}, {},
    ),
    "SpamComplaint.json": (
        "message.spam_complaint", "SpamComplaint", "SpamComplaint:42", ZERO, "john@example.com", DOCS_TIME,
        ("Test",), A_B, {},
    ),
    "Open.json": (
        "message.opened", "Open", f"Open:{MID}:john@example.com:2019-11-05T16:33:54.907025+00:00", MID,
        "john@example.com", DOCS_TIME, ("welcome-email",), A_B, OPEN_DETAILS,
    ),
    "Click.json": (
        "message.clicked", "Click", f"Click:{ZERO}:john@example.com:2017-10-25T15:21:11.906561+00:00", ZERO,
        "john@example.com", datetime(2017, 10, 25, 15, 21, 11, 906561, tzinfo=UTC), ("welcome-email",), A_B,
        {
            **OPEN_DETAILS, "first": None, "client_type": "Desktop", "ip": "8.8.8.8",
            "url": "https://example.com", "link_index": None,
        },
    ),
    "SubscriptionChange.HardBounce.json": (
        "suppression.added", "SubscriptionChange",
        f"SubscriptionChange:{MID}:bounced-address@example.com:2020-02-01T10:53:34.416071+00:00",
        "bounced-address@example.com", "bounced-address@example.com",
        datetime(2020, 2, 1, 10, 53, 34, 416071, tzinfo=UTC), ("my-tag",), EXAMPLE_META,
        {"suppression_type": "email", "value": "bounced-address@example.com", "reason": "HardBounce"},
    ),
    "SubscriptionChange.Unsubscribe.json": (
        "message.unsubscribed", "SubscriptionChange",
        "SubscriptionChange:4e6a8c0e-2f4a-4b6c-8d0e-2f4a6b8c0d2e:leaving@example.com:2025-08-10T09:00:00.100000+00:00",
        "4e6a8c0e-2f4a-4b6c-8d0e-2f4a6b8c0d2e", "leaving@example.com",
        datetime(2025, 8, 10, 9, 0, 0, 100000, tzinfo=UTC), ("newsletter",), {"list": "weekly"}, {},
    ),
    "SubscriptionChange.CustomerSuppression.json": (
        "suppression.added", "SubscriptionChange",
        "SubscriptionChange::do-not-mail@example.com:2025-08-11T12:00:00+00:00", "do-not-mail@example.com",
        "do-not-mail@example.com", datetime(2025, 8, 11, 12, 0, tzinfo=UTC), (), {},
        {"suppression_type": "email", "value": "do-not-mail@example.com", "reason": "ManualSuppression"},
    ),
    "SubscriptionChange.Reactivation.json": (
        "suppression.removed", "SubscriptionChange",
        "SubscriptionChange::bounced-address@example.com:2025-08-11T12:30:00+00:00", "bounced-address@example.com",
        "bounced-address@example.com", datetime(2025, 8, 11, 12, 30, tzinfo=UTC), (), {},
        {"suppression_type": "email", "value": "bounced-address@example.com", "reason": "HardBounce"},
    ),
}  # fmt: skip


def test_every_fixture_has_expectations() -> None:
    assert sorted(EXPECTED) == [path.name for path in FIXTURE_FILES]


def test_fixtures_cover_every_record_type() -> None:
    record_types = {json.loads(path.read_bytes())["RecordType"] for path in FIXTURE_FILES}
    assert record_types == {"Delivery", "Bounce", "SpamComplaint", "Open", "Click", "SubscriptionChange"}


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_normalised(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = json.loads(text)
    event = normalise(text.encode())
    event_type, provider_event, event_id, key, recipient, occurred_at, tags, metadata, details = EXPECTED[path.name]
    assert (event.event_type, event.provider_event, event.event_id, event.key) == (
        event_type, provider_event, event_id, key
    )  # fmt: skip
    assert (event.message_id, event.recipient, event.occurred_at) == (payload["MessageID"], recipient, occurred_at)
    assert (event.tags, dict(event.metadata), dict(event.details)) == (tags, metadata, details)
    assert (event.raw, event.provider, event.source, event.channel, event.attempt, event.received_at) == (
        text, "postmark", "pm-prod", "email", None, RECEIVED
    )  # fmt: skip


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert fits_schema(normalise(path.read_bytes()))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_event_id_is_the_same_for_a_retry(path: Path) -> None:
    body = path.read_bytes()
    assert normalise(body).event_id == normalise(body).event_id


# --- normalise: the mapping ----------------------------------------------------------------------

# Postmark's bounce-type table (postmarkapp.com/developer/api/bounce-api#bounce-types), all 22.
BOUNCE_MAPPING = {
    "HardBounce": "message.hard_bounced",
    "BadEmailAddress": "message.hard_bounced",
    "ManuallyDeactivated": "message.hard_bounced",
    "Unconfirmed": "message.hard_bounced",
    "Transient": "message.soft_bounced",
    "DnsError": "message.soft_bounced",
    "SoftBounce": "message.soft_bounced",
    "SpamNotification": "message.soft_bounced",
    "VirusNotification": "message.soft_bounced",
    "ChallengeVerification": "message.soft_bounced",
    "Blocked": "message.soft_bounced",
    "DMARCPolicy": "message.soft_bounced",
    "Unknown": "message.soft_bounced",
    "SpamComplaint": "message.spam_complaint",
    "Unsubscribe": "message.unsubscribed",
    "AutoResponder": "message.auto_replied",
    "AddressChange": "message.auto_replied",
    "SMTPApiError": "message.failed",
    "TemplateRenderingFailed": "message.failed",
    "Subscribe": UNMAPPED,
    "OpenRelayTest": UNMAPPED,
    "InboundError": UNMAPPED,
}


@pytest.mark.parametrize(("bounce_type", "event_type"), BOUNCE_MAPPING.items())
def test_bounce_type(bounce_type: str, event_type: str) -> None:
    event = normalise(bounce(bounce_type, Details="smtp;550 5.7.1 Refused", Description="why"))
    assert (event.event_type, event.provider_event, event.event_id) == (event_type, f"Bounce/{bounce_type}", "Bounce:7")
    if event_type in {"message.hard_bounced", "message.soft_bounced"}:
        assert event.details["bounce_class"] == bounce_type
    assert fits_schema(event)


def test_failed_bounce_details() -> None:
    event = normalise(bounce("TemplateRenderingFailed", Description="An error occurred while rendering."))
    assert dict(event.details) == {
        "reason": "An error occurred while rendering.",
        "smtp_status_code": None,
        "smtp_enhanced_status_code": None,
        "smtp_response": None,
        "error_code": "TemplateRenderingFailed",
    }


@pytest.mark.parametrize(
    ("bounce_type", "provider_event"), [("FutureType", "Bounce/FutureType"), (None, "Bounce"), ("", "Bounce")]
)
def test_unknown_or_missing_bounce_type_is_unmapped(bounce_type: str | None, provider_event: str) -> None:
    event = normalise(bounce(bounce_type))
    assert (event.event_type, event.provider_event, dict(event.details)) == (UNMAPPED, provider_event, {})
    assert fits_schema(event)


@pytest.mark.parametrize(
    ("suppress", "reason", "origin", "event_type"),
    [
        (True, "ManualSuppression", "Recipient", "message.unsubscribed"),
        (True, None, None, "message.unsubscribed"),
        ("true", "ManualSuppression", "Recipient", "message.unsubscribed"),
        (True, "HardBounce", "Recipient", "suppression.added"),
        (True, "SpamComplaint", "Recipient", "suppression.added"),
        (True, "ManualSuppression", "Customer", "suppression.added"),
        (True, "ManualSuppression", "Admin", "suppression.added"),
        (False, "ManualSuppression", "Recipient", "suppression.removed"),
        (False, "HardBounce", "Customer", "suppression.removed"),
        ("False", "HardBounce", "Customer", "suppression.removed"),
    ],
)
def test_subscription_change(suppress: object, reason: str | None, origin: str | None, event_type: str) -> None:
    event = normalise(change(suppress, reason, origin))
    assert event.event_type == event_type
    assert event.key == ("user@example.com" if event_type.startswith("suppression.") else "m-1")
    assert fits_schema(event)


@pytest.mark.parametrize("suppress", [None, "yes", 1, []])
def test_subscription_change_needs_suppress_sending(suppress: object) -> None:
    with pytest.raises(PayloadInvalid, match="SuppressSending"):
        normalise(change(suppress))


def test_unknown_record_type_is_unmapped_with_its_own_time() -> None:
    event = normalise(record(RecordType="Inbound", DeliveredAt=None, ReceivedAt="2025-08-08T21:00:00Z"))
    assert (event.event_type, event.provider_event, event.key) == (UNMAPPED, "Inbound", "m-1")
    assert event.occurred_at == datetime(2025, 8, 8, 21, 0, tzinfo=UTC)
    assert event.event_id == "Inbound:m-1:user@example.com:2025-08-08T21:00:00+00:00"
    assert fits_schema(event)


def test_unknown_record_type_without_time_or_ids() -> None:
    body = b'{"RecordType":"Teleport","Planet":"Mars"}'
    event = normalise(body)
    assert (event.event_type, event.occurred_at, event.message_id, event.recipient) == (UNMAPPED, RECEIVED, None, None)
    assert event.event_id == normalise(body).event_id == event.key
    assert event.event_id.startswith("sha256:")
    assert fits_schema(event)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"MessageID": None, "MessageId": "m-2"}, "m-2"),  # casing in an older postmark.js type
        ({"MessageID": None}, "user@example.com"),
        ({"MessageID": None, "Recipient": None}, None),
    ],
)
def test_key_falls_back(fields: dict[str, Any], key: str | None) -> None:
    event = normalise(record(**fields))
    assert event.key == (key or event.event_id)


def test_event_id_depends_on_the_recipient_and_instant_not_the_offset() -> None:
    first = normalise(record())
    assert normalise(record(Recipient="other@example.com")).event_id != first.event_id
    assert normalise(record(DeliveredAt="2025-08-08T20:15:01Z")).event_id != first.event_id
    assert normalise(record(DeliveredAt="2025-08-08T22:15:00+02:00")).event_id == first.event_id


@pytest.mark.parametrize("bounce_id", [None, "", True])
def test_bounce_without_usable_id_derives_one(bounce_id: object) -> None:
    event = normalise(bounce("HardBounce", ID=bounce_id))
    assert event.event_id == "Bounce:m-1:user@example.com:2025-08-08T20:15:00+00:00"


def test_bounce_recipient_is_email() -> None:
    event = normalise(bounce("HardBounce", Recipient=None, Email="bounced@example.com"))
    assert event.recipient == "bounced@example.com"


@pytest.mark.parametrize(
    ("details", "code", "enhanced"),
    [
        ("smtp;550 5.1.1 No such user", 550, "5.1.1"),
        ("550-5.1.1 No such user", 550, "5.1.1"),
        ("250 OK", 250, None),
        ("  smtp; 421 Try later", 421, None),
        ("Test bounce details", None, None),
        ("5501 not a reply", None, None),
        ("", None, None),
    ],
)
def test_smtp_reply_in_details(details: str, code: int | None, enhanced: str | None) -> None:
    event = normalise(record(Details=details))
    assert (event.details["smtp_status_code"], event.details["smtp_enhanced_status_code"]) == (code, enhanced)
    assert event.details["smtp_response"] == (details or None)


def test_metadata_and_tag() -> None:
    event = normalise(record(Tag="t", Metadata={"n": 1, "s": "x", "o": {"a": [1]}, "b": False}))
    assert (event.tags, dict(event.metadata)) == (("t",), {"n": "1", "s": "x", "o": '{"a":[1]}', "b": "false"})
    assert (normalise(record(Tag="")).tags, normalise(record(Metadata=[1])).metadata) == ((), {})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"RecordType":"Delivery"}]', id="array"),
        pytest.param(record(RecordType=None), id="no-record-type"),
        pytest.param(record(RecordType=""), id="empty-record-type"),
        pytest.param(record(RecordType=3), id="numeric-record-type"),
        pytest.param(record(DeliveredAt=None), id="no-delivered-at"),
        pytest.param(record(DeliveredAt="2025-08-08T20:15:00"), id="naive-time"),
        pytest.param(record(DeliveredAt="yesterday"), id="bad-time"),
        pytest.param(record(DeliveredAt=1754684100), id="unix-number"),
        pytest.param(bounce("HardBounce", BouncedAt=None), id="bounce-without-bounced-at"),
        pytest.param(record(RecordType="Open", DeliveredAt=None), id="open-without-received-at"),
        pytest.param(record(RecordType="Teleport", DeliveredAt="soon"), id="unknown-type-bad-time"),
        pytest.param(record().decode().encode("utf-16"), id="utf-16"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(body)


# --- example() -----------------------------------------------------------------------------------

EXAMPLE_TYPES = [
    "message.delivered",
    "message.hard_bounced",
    "message.soft_bounced",
    "message.spam_complaint",
    "message.auto_replied",
    "message.failed",
    "message.opened",
    "message.clicked",
    "message.unsubscribed",
    "suppression.added",
    "suppression.removed",
]


def test_examples_exist_for_everything_postmark_sends() -> None:
    assert sorted(postmark.EXAMPLE_TYPES) == sorted(EXAMPLE_TYPES)


@pytest.mark.parametrize("event_type", EXAMPLE_TYPES)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    body, headers = SENDER.sign(SENDER.example(event_type, NOW_DT), BOTH, NOW)
    verify(raw(*headers.items()), BOTH, body)
    event = normalise(body)
    assert (event.event_type, event.occurred_at) == (event_type, NOW_DT)
    assert fits_schema(event)


def test_example_times_in_postmarks_form() -> None:
    assert json.loads(SENDER.example("message.delivered", NOW_DT))["DeliveredAt"] == "2025-08-08T20:15:12.3456780Z"


def test_examples_are_fresh_deliveries() -> None:
    for event_type in ("message.delivered", "message.hard_bounced"):
        first, second = (normalise(SENDER.example(event_type, NOW_DT)) for _ in range(2))
        assert first.event_id != second.event_id


@pytest.mark.parametrize("event_type", ["message.created", "webhook.test", UNMAPPED])
def test_example_of_an_event_postmark_does_not_send(event_type: str) -> None:
    with pytest.raises(ValueError, match="Postmark sends no"):
        SENDER.example(event_type, NOW_DT)


@pytest.mark.parametrize(
    ("pairs", "src", "reason"),
    [
        pytest.param([], BASIC, "missing_header", id="no-authorization"),
        pytest.param(raw(("Authorization", "Bearer x")), BASIC, "malformed_header", id="not-basic"),
        pytest.param(raw(("Authorization", "Basic !!!")), BASIC, "malformed_header", id="not-base64"),
        pytest.param(raw(basic(password="wrong")), BASIC, "bad_credentials", id="wrong-password"),
        pytest.param([], HEADER_ONLY, "missing_header", id="no-secret-header"),
        pytest.param(raw(token(), token()), HEADER_ONLY, "malformed_header", id="secret-header-twice"),
        pytest.param(raw(token("wrong")), HEADER_ONLY, "bad_credentials", id="wrong-secret"),
    ],
)
def test_reasons(pairs: Pairs, src: PostmarkSource, reason: str) -> None:
    """Postmark signs no timestamp: there is no stale case."""
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, src)
    assert caught.value.reason == reason
