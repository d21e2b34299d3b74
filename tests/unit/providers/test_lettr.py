"""Lettr provider: Basic / OAuth2 Bearer / lettr-signature, the token endpoint, SparkPost-style batches
(docs/providers.md#lettr-lettr)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from bridge.errors import ConfigError, PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.events import UNMAPPED, CanonicalEvent, Delivery
from bridge.headers import Headers
from bridge.providers import PROVIDERS
from bridge.providers.base import ProviderIO, TokenIssuer
from bridge.providers.lettr import Lettr, LettrSender, LettrSource
from bridge.providers.lettr.credentials import OAuthClient, mint
from bridge.providers.lettr.sender import signature_headers
from tests.support import providers as helpers
from tests.support.fakes import FakePublisher, MockRegistry, wait_until_registered
from tests.support.providers import Pairs, file_name, fits_schema, fixture_files, is_fresh

LETTR = Lettr()
SENDER = LettrSender()
FIXTURES = helpers.FIXTURES / "lettr"
FIXTURE_FILES = fixture_files("lettr")

# A derived vector (docs/providers.md#lettr-lettr has none): computed with `openssl dgst -sha256 -hmac` as well.
SECRET = "lettr-webhook-secret"
OTHER = "some-other-secret"
T = 1700000000
BODY_TEXT = (
    '[{"msys":{"message_event":{"type":"delivery","event_id":"e-1","message_id":"m-1",'
    '"rcpt_to":"user@example.com","timestamp":"1700000000"}}}]'
)
BODY = BODY_TEXT.encode()
HEX_DIGEST = "dd450d7f3b5bdb1d1ccb07e34b06cc92544050ed44b7b3b09385230d7a4b2c1c"
TIMESTAMPED_DIGEST = "7fb9ef27d62815e806ee3fb98050ccc61a4f2ae128849d7d6385076f15c7a441"

USER, PASSWORD = "lettr", "correct horse battery staple"
OLD_USER, OLD_PASSWORD = "lettr-old", "pässwörd-from-last-year"
CLIENT_ID, CLIENT_SECRET = "lettr-webhooks", "client-secret-0123456789"
OLD_CLIENT_SECRET = "previous-secret-0123456789"
TOKEN_KEY_LABEL = b"webhook-kafka-bridge/lettr/oauth2-access-token/v1"

RECEIVED = datetime(2025, 8, 9, 12, 0, tzinfo=UTC)
NOW_DT = datetime(2025, 8, 8, 20, 15, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())


# --- helpers -------------------------------------------------------------------------------------


def raw(*pairs: tuple[str, str]) -> Pairs:
    """Raw headers with UTF-8 values, as a real client sends them."""
    return helpers.raw(*pairs, encoding="utf-8")


def hex_hmac(secret: str, message: bytes) -> str:
    """Computed here, independently of the provider module."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def plain(secret: str = SECRET, body: bytes = BODY) -> tuple[str, str]:
    return ("lettr-signature", hex_hmac(secret, body))


def timestamped(secret: str = SECRET, t: int = T, body: bytes = BODY) -> tuple[str, str]:
    return ("lettr-signature", f"t={t},v1={hex_hmac(secret, f'{t}.'.encode() + body)}")


def basic(user: str = USER, password: str = PASSWORD) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def source(
    *secrets: str, options: dict[str, Any] | None = None, tolerance: int = 300, name: str = "lettr-prod"
) -> LettrSource:
    return LettrSource.model_validate(source_tree(*secrets, options=options, tolerance=tolerance, name=name))


def source_tree(
    *secrets: str, options: dict[str, Any] | None = None, tolerance: int = 300, name: str = "lettr-prod"
) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "lettr",
        "secrets": list(secrets),
        "tolerance_seconds": tolerance,
        "options": options or {},
    }


def oauth(*clients: tuple[str, str], ttl: int | None = None) -> dict[str, Any]:
    listed = [{"client_id": cid, "client_secret": secret} for cid, secret in clients or [(CLIENT_ID, CLIENT_SECRET)]]
    return {"oauth2": {"clients": listed, **({"token_ttl_seconds": ttl} if ttl else {})}}


SIGNED = source(SECRET)
ROTATING_SIGNED = source("old-signing-secret", "new-signing-secret")
BASIC = source(options={"basic_auth": [{"username": USER, "password": PASSWORD}]})
ROTATING_BASIC = source(
    options={
        "basic_auth": [
            {"username": OLD_USER, "password": OLD_PASSWORD},
            {"username": USER, "password": PASSWORD},
        ]
    }
)
OAUTH = source(options=oauth())
BASIC_AND_SIGNED = source(SECRET, options={"basic_auth": [{"username": USER, "password": PASSWORD}]})
OAUTH_AND_SIGNED = source(SECRET, options=oauth())


def verify(pairs: Pairs, src: LettrSource = SIGNED, body: bytes = BODY, now: float = T) -> None:
    LETTR.verify(Headers(raw=pairs), body, src, now)


def issue(
    form: dict[str, str], authorization: str | None = None, src: LettrSource = OAUTH, now: float = NOW
) -> dict[str, Any]:
    """The token response of a source that has a token endpoint."""
    answer = LETTR.issue_token(form, authorization, src, now)
    assert answer is not None
    return answer


def token_for(src: LettrSource = OAUTH, now: float = NOW, secret: str = CLIENT_SECRET) -> str:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": secret}
    return str(issue(form, src=src, now=now)["access_token"])


def normalise_all(body: bytes) -> list[CanonicalEvent]:
    return LETTR.normalise(Delivery("lettr-prod", "lettr", Headers(raw=[]), body, RECEIVED))


def normalise(body: bytes) -> CanonicalEvent:
    [event] = normalise_all(body)
    return event


def element(category: str = "message_event", **fields: Any) -> dict[str, Any]:
    data = {"type": "delivery", "event_id": "e-1", "message_id": "m-1", "timestamp": "1454442600"} | fields
    return {"msys": {category: {key: value for key, value in data.items() if value is not None}}}


def batch(*elements: Any) -> bytes:
    return json.dumps(list(elements) or [element()]).encode()


def fixture(name: str) -> list[CanonicalEvent]:
    return normalise_all((FIXTURES / name).read_bytes())


# --- LettrSource: which credentials a source configures -----------------------------------------


@pytest.mark.parametrize(
    "src",
    [SIGNED, BASIC, ROTATING_BASIC, OAUTH, BASIC_AND_SIGNED, OAUTH_AND_SIGNED],
    ids=["signature", "basic", "basic-rotation", "oauth2", "basic+signature", "oauth2+signature"],
)
def test_configurations_that_start(src: LettrSource) -> None:
    assert src.provider == "lettr"


@pytest.mark.parametrize(
    ("secrets", "options", "message"),
    [
        pytest.param([], {}, "lettr needs credentials", id="nothing"),
        pytest.param([], {"basic_auth": []}, "lettr needs credentials", id="empty-basic-list"),
        pytest.param(
            [], {"basic_auth": [{"username": USER, "password": PASSWORD}], **oauth()}, "not both", id="basic+oauth2"
        ),
        pytest.param([], {"basic_auth": [{"username": "a:b", "password": "x"}]}, "cannot contain ':'", id="colon"),
        pytest.param([], {"basic_auth": [{"username": USER, "password": ""}]}, "password is empty", id="no-password"),
        pytest.param([], {"basic_auth": [{"username": "", "password": "x"}]}, "username", id="no-username"),
        pytest.param([], {"basic_auth": [{"username": USER}]}, "basic_auth.0.password", id="password-missing"),
        pytest.param([], oauth((CLIENT_ID, "short")), "at least 16 characters", id="short-client-secret"),
        pytest.param([], {"oauth2": {"clients": []}}, "oauth2.clients", id="no-clients"),
        pytest.param([], oauth(ttl=5), "token_ttl_seconds", id="ttl-too-short"),
        pytest.param([SECRET], {"colour": "blue"}, "options.colour: unknown key", id="unknown-option"),
        pytest.param([SECRET], {"oauth2": {**oauth()["oauth2"], "scope": "x"}}, "unknown key", id="unknown-oauth-key"),
    ],
)
def test_configurations_refused_at_start_up(secrets: list[str], options: dict[str, Any], message: str) -> None:
    tree = source_tree(*secrets, options=options)
    with pytest.raises(ValidationError):
        LettrSource.model_validate(tree)
    with pytest.raises(ConfigError, match=message):
        config.parse_source(tree)


def test_a_config_file_error_names_the_key() -> None:
    yaml = """
kafka: {bootstrap_servers: "127.0.0.1:1"}
schema_registry: {url: "mock://unit"}
sources:
  - {name: lettr, provider: lettr, options: {basic_auth: [{username: lettr}]}}
"""
    with pytest.raises(ConfigError, match=r"sources\.0\.options\.basic_auth\.0\.password: Field required"):
        config.parse(yaml, environ={})


def test_the_registry_knows_lettr() -> None:
    spec = PROVIDERS["lettr"]
    assert (spec.source, spec.sender) == (LettrSource, LettrSender)
    provider = spec.build(ProviderIO.default())
    assert isinstance(provider, Lettr) and isinstance(provider, TokenIssuer)


def test_a_source_parses_through_the_configuration() -> None:
    parsed = config.parse_source(source_tree(options=oauth()))
    assert isinstance(parsed, LettrSource) and parsed.options.oauth2 is not None


# --- lettr-signature: both documented forms ------------------------------------------------------


def test_the_derived_vector_is_what_hmac_gives() -> None:
    assert (len(BODY), hex_hmac(SECRET, BODY)) == (138, HEX_DIGEST)
    assert hex_hmac(SECRET, f"{T}.".encode() + BODY) == TIMESTAMPED_DIGEST


WRONG = hex_hmac(OTHER, f"{T}.".encode() + BODY)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(("lettr-signature", HEX_DIGEST)), id="hex-vector"),
        pytest.param(raw(("Lettr-Signature", HEX_DIGEST.upper())), id="hex-uppercase"),
        pytest.param(raw(("lettr-signature", f" {HEX_DIGEST} ")), id="hex-spaces"),
        pytest.param(raw(("lettr-signature", f"t={T},v1={TIMESTAMPED_DIGEST}")), id="timestamped-vector"),
        pytest.param(raw(("lettr-signature", f"t={T}, v1={WRONG}, v1={TIMESTAMPED_DIGEST}")), id="second-v1"),
        pytest.param(raw(("lettr-signature", f"v1={TIMESTAMPED_DIGEST},t={T},v2=x")), id="order-and-v2"),
    ],
)
def test_signature_accepted(pairs: Pairs) -> None:
    verify(pairs)


@pytest.mark.parametrize(
    ("pairs", "body"),
    [
        pytest.param(raw(plain()), BODY.replace(b"m-1", b"m-2"), id="hex-tampered-body"),
        pytest.param(raw(timestamped()), BODY.replace(b"m-1", b"m-2"), id="timestamped-tampered-body"),
        pytest.param(raw(plain(OTHER)), BODY, id="hex-wrong-secret"),
        pytest.param(raw(timestamped(OTHER)), BODY, id="timestamped-wrong-secret"),
        pytest.param([], BODY, id="missing-header"),
        pytest.param(raw(plain(), plain()), BODY, id="duplicate-header"),
        pytest.param(raw(("lettr-signature", HEX_DIGEST[:-1])), BODY, id="63-hex-digits"),
        pytest.param(raw(("lettr-signature", "sha256=" + HEX_DIGEST)), BODY, id="undocumented-prefix"),
        pytest.param(raw(("lettr-signature", "")), BODY, id="empty"),
        pytest.param(raw(("lettr-signature", f"v1={TIMESTAMPED_DIGEST}")), BODY, id="no-t"),
        pytest.param(raw(("lettr-signature", f"t={T},t={T},v1={TIMESTAMPED_DIGEST}")), BODY, id="two-t"),
        pytest.param(raw(("lettr-signature", f"t={T}")), BODY, id="no-v1"),
        pytest.param(raw(("lettr-signature", f"t=17e8,v1={hex_hmac(SECRET, b'17e8.' + BODY)}")), BODY, id="t-17e8"),
        pytest.param(raw(("lettr-signature", f"t={T},v1={HEX_DIGEST}")), BODY, id="hex-digest-as-v1"),
        pytest.param(raw(("lettr-signature", TIMESTAMPED_DIGEST)), BODY, id="v1-digest-as-hex"),
        pytest.param(raw(("x-lettr-signature", HEX_DIGEST)), BODY, id="other-header-name"),
    ],
)
def test_signature_refused(pairs: Pairs, body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, body=body)
    assert type(caught.value) is SignatureInvalid  # not reported as a clock problem


@pytest.mark.parametrize("value", [HEX_DIGEST[:-1], HEX_DIGEST + "0", "g" * 64, "sha256:" + HEX_DIGEST])
def test_a_malformed_plain_signature_is_named(value: str) -> None:
    with pytest.raises(SignatureInvalid, match="neither 64 hex digits nor t="):
        verify(raw(("lettr-signature", value)))


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_timestamped_within_tolerance(skew: int) -> None:
    verify(raw(timestamped()), now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_timestamped_outside_tolerance_is_stale(skew: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(raw(timestamped()), now=T + skew)


def test_the_plain_hex_form_carries_no_time_so_it_is_never_stale() -> None:
    verify(raw(plain()), now=T + 86_400 * 365)


def test_stale_only_reported_for_authentic_deliveries() -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(raw(timestamped(OTHER)), now=T + 3600)
    assert type(caught.value) is SignatureInvalid


@pytest.mark.parametrize(("tolerance", "skew", "ok"), [(0, 0, True), (0, 1, False), (3600, -3600, True)])
def test_tolerance_per_source(tolerance: int, skew: int, ok: bool) -> None:
    assert is_fresh(lambda: verify(raw(timestamped()), src=source(SECRET, tolerance=tolerance), now=T + skew)) is ok


@pytest.mark.parametrize("secret", ["old-signing-secret", "new-signing-secret"])
@pytest.mark.parametrize("form", [plain, timestamped])
def test_signature_rotation_either_secret(secret: str, form: Any) -> None:
    verify(raw(form(secret)), src=ROTATING_SIGNED)


def test_signature_rotation_third_secret_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify(raw(plain("third-signing-secret")), src=ROTATING_SIGNED)


def test_a_signature_only_source_ignores_authorization() -> None:
    verify(raw(plain(), basic("anyone", "anything")))


# --- HTTP Basic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(basic()), id="current-pair"),
        pytest.param(raw(basic(OLD_USER, OLD_PASSWORD)), id="previous-pair-utf8"),
        pytest.param(raw(("Authorization", basic()[1].replace("Basic", "basic"))), id="scheme-case"),
    ],
)
def test_basic_accepted_rotation(pairs: Pairs) -> None:
    verify(pairs, src=ROTATING_BASIC)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(basic(USER, "wrong")), id="wrong-password"),
        pytest.param(raw(basic("someone", PASSWORD)), id="wrong-username"),
        pytest.param(raw(basic(USER, OLD_PASSWORD)), id="pairs-not-mixed"),
        pytest.param(raw(basic(USER, PASSWORD + "x")), id="password-prefix"),
        pytest.param([], id="missing-authorization"),
        pytest.param(raw(basic(), basic()), id="duplicate-authorization"),
        pytest.param(raw(("Authorization", "Bearer " + basic()[1][6:])), id="bearer-scheme"),
        pytest.param(raw(("Authorization", "Basic !!not-base64!!")), id="not-base64"),
        pytest.param(raw(("Authorization", "Basic " + base64.b64encode(USER.encode()).decode())), id="no-colon"),
        pytest.param(raw(("Authorization", "Basic")), id="no-credentials"),
    ],
)
def test_basic_refused(pairs: Pairs) -> None:
    with pytest.raises(SignatureInvalid):
        verify(pairs, src=ROTATING_BASIC)


def test_a_non_ascii_basic_header_is_refused_not_an_error() -> None:
    with pytest.raises(SignatureInvalid):
        verify([(b"authorization", "Basic bGV0dHI6é".encode("latin-1"))], src=BASIC)


# --- Every configured credential must pass ------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "ok"),
    [
        pytest.param(raw(basic(), plain()), True, id="both"),
        pytest.param(raw(basic(), timestamped()), True, id="both-timestamped"),
        pytest.param(raw(basic()), False, id="no-signature"),
        pytest.param(raw(plain()), False, id="no-basic"),
        pytest.param(raw(basic(), plain(OTHER)), False, id="wrong-signature"),
        pytest.param(raw(basic(USER, "wrong"), plain()), False, id="wrong-basic"),
    ],
)
def test_basic_and_signature_both_required(pairs: Pairs, ok: bool) -> None:
    try:
        verify(pairs, src=BASIC_AND_SIGNED)
    except SignatureInvalid:
        assert not ok
    else:
        assert ok


def test_bearer_and_signature_both_required() -> None:
    token = token_for(OAUTH_AND_SIGNED, now=T)
    verify(raw(bearer(token), plain()), src=OAUTH_AND_SIGNED)
    for pairs in (raw(bearer(token)), raw(plain()), raw(bearer(token), plain(OTHER))):
        with pytest.raises(SignatureInvalid):
            verify(pairs, src=OAUTH_AND_SIGNED)


# --- OAuth2: the token endpoint ------------------------------------------------------------------


def client_basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


GRANT = {"grant_type": "client_credentials"}
FORM = {**GRANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def test_the_token_response_is_rfc_6749_section_5_1() -> None:
    answer = issue(FORM)
    assert set(answer) == {"access_token", "token_type", "expires_in"}
    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 600)
    assert isinstance(answer["access_token"], str) and answer["access_token"].startswith("v1.")


def test_the_token_ttl_is_configurable() -> None:
    src = source(options=oauth(ttl=120))
    answer = issue(FORM, src=src)
    assert answer["expires_in"] == 120
    verify(raw(bearer(answer["access_token"])), src=src, now=NOW + 119)
    with pytest.raises(StaleTimestamp):
        verify(raw(bearer(answer["access_token"])), src=src, now=NOW + 120)


def test_the_token_is_an_hmac_with_a_key_derived_from_the_client_secret() -> None:
    """The documented format, recomputed here: v1.<b64url claims>.<b64url HMAC(HMAC(secret, label), 'v1.'+claims)>."""
    version, claims, signature = issue(FORM)["access_token"].split(".")
    key = hmac.new(CLIENT_SECRET.encode(), TOKEN_KEY_LABEL, hashlib.sha256).digest()
    expected = hmac.new(key, f"{version}.{claims}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=") == expected
    assert json.loads(base64.urlsafe_b64decode(claims + "==")) == {
        "cid": CLIENT_ID, "src": "lettr-prod", "exp": NOW + 600
    }  # fmt: skip


@pytest.mark.parametrize(
    ("form", "authorization"),
    [
        pytest.param(FORM, None, id="form"),
        pytest.param(GRANT, client_basic(), id="basic"),
        pytest.param({**GRANT, "client_id": CLIENT_ID}, client_basic(), id="basic-with-client-id-in-form"),
    ],
)
def test_client_credentials_in_the_form_or_as_basic(form: dict[str, str], authorization: str | None) -> None:
    verify(raw(bearer(issue(form, authorization)["access_token"])), src=OAUTH, now=NOW)


def test_form_encoded_basic_client_credentials_are_decoded() -> None:
    """RFC 6749 §2.3.1 form-encodes id and secret before base64; a secret with '+' and '%' survives."""
    secret = "s3cret+with%special chars"
    src = source(options=oauth(("client id", secret)))
    encoded = client_basic("client+id", "s3cret%2Bwith%25special+chars")
    assert issue(GRANT, encoded, src)["token_type"] == "Bearer"
    assert issue(GRANT, client_basic("client id", secret), src)["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "authorization"),
    [
        pytest.param({**FORM, "client_secret": "wrong-secret-0123456789"}, None, id="wrong-secret"),
        pytest.param({**FORM, "client_id": "someone-else"}, None, id="unknown-client"),
        pytest.param({**FORM, "client_secret": ""}, None, id="empty-secret"),
        pytest.param({**GRANT, "client_id": CLIENT_ID}, None, id="no-secret"),
        pytest.param(GRANT, None, id="no-credentials"),
        pytest.param(GRANT, client_basic(secret="wrong-secret-0123456789"), id="basic-wrong-secret"),
        pytest.param(FORM, client_basic(), id="two-methods"),
        pytest.param(GRANT, "Basic !!!", id="basic-not-base64"),
        pytest.param({**FORM, "grant_type": "password"}, client_basic(secret="nope"), id="bad-grant-and-secret"),
    ],
)
def test_bad_client_credentials_are_refused(form: dict[str, str], authorization: str | None) -> None:
    with pytest.raises(SignatureInvalid):
        issue(form, authorization)


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "", None])
def test_another_grant_type_is_refused_after_authentication(grant_type: str | None) -> None:
    form = {key: value for key, value in {**FORM, "grant_type": grant_type}.items() if value is not None}
    with pytest.raises(PayloadInvalid, match="grant_type must be client_credentials"):
        issue(form)


@pytest.mark.parametrize("src", [SIGNED, BASIC], ids=["signature-only", "basic-only"])
def test_a_source_without_oauth2_has_no_token_endpoint(src: LettrSource) -> None:
    assert LETTR.issue_token(FORM, None, src, NOW) is None  # the HTTP layer answers 404


# --- OAuth2: the Bearer on deliveries ------------------------------------------------------------


def test_a_token_verifies_on_another_replica() -> None:
    """Stateless: a second provider instance, with the same configuration parsed afresh, accepts it."""
    token = token_for(now=NOW)
    Lettr().verify(Headers(raw=raw(bearer(token))), BODY, source(options=oauth()), NOW + 599)


@pytest.mark.parametrize("age", [0, 1, 599])
def test_a_token_is_valid_until_it_expires(age: int) -> None:
    verify(raw(bearer(token_for(now=NOW))), src=OAUTH, now=NOW + age)


@pytest.mark.parametrize("age", [600, 601, 86_400])
def test_an_expired_token_is_stale(age: int) -> None:
    with pytest.raises(StaleTimestamp):
        verify(raw(bearer(token_for(now=NOW))), src=OAUTH, now=NOW + age)


def reclaimed(token: str, **claims: Any) -> str:
    """The token with its claims changed and the signature kept: a forgery."""
    version, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "==")) | claims
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{version}.{edited}.{signature}"


TOKEN = token_for(now=NOW)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param(raw(bearer(reclaimed(TOKEN, exp=NOW + 10**6))), id="extended-expiry"),
        pytest.param(raw(bearer(reclaimed(TOKEN, src="lettr-other"))), id="edited-source"),
        pytest.param(raw(bearer(TOKEN[:-2] + ("AA" if not TOKEN.endswith("AA") else "BB"))), id="edited-signature"),
        pytest.param(raw(bearer(token_for(source(options=oauth(), name="lettr-other"), now=NOW))), id="other-source"),
        pytest.param(raw(bearer("v2" + TOKEN[2:])), id="other-version"),
        pytest.param(raw(bearer(TOKEN.rsplit(".", 1)[0])), id="no-signature"),
        pytest.param(raw(bearer("opaque-token-from-somewhere")), id="foreign-token"),
        pytest.param(raw(bearer("")), id="empty"),
        pytest.param(raw(("Authorization", TOKEN)), id="no-scheme"),
        pytest.param(raw(basic(CLIENT_ID, CLIENT_SECRET)), id="basic-instead"),
        pytest.param([], id="missing-authorization"),
        pytest.param(raw(bearer(TOKEN), bearer(TOKEN)), id="duplicate-authorization"),
    ],
)
def test_forged_or_foreign_bearers_are_refused(pairs: Pairs) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, src=OAUTH, now=NOW)
    assert type(caught.value) is SignatureInvalid


def signed_with_the_key(payload: str, version: str = "v1") -> str:
    """A token signed with the real derived key: what only a holder of the client secret can make."""
    key = hmac.new(CLIENT_SECRET.encode(), TOKEN_KEY_LABEL, hashlib.sha256).digest()
    signature = hmac.new(key, f"{version}.{payload}".encode(), hashlib.sha256).digest()
    return f"{version}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def b64_claims(claims: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def test_a_token_of_another_format_version_is_refused_even_when_signed_with_the_right_key() -> None:
    forged = signed_with_the_key(TOKEN.split(".")[1], version="v2")
    with pytest.raises(SignatureInvalid, match="not one this bridge issued"):
        verify(raw(bearer(forged)), src=OAUTH, now=NOW)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param("!!!", "unreadable", id="not-base64"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), "unreadable", id="not-utf8"),
        pytest.param(b64_claims(["cid", CLIENT_ID]), "not an object", id="array"),
        pytest.param(b64_claims({"cid": CLIENT_ID, "src": "lettr-prod"}), "no expiry", id="no-exp"),
        pytest.param(b64_claims({"cid": CLIENT_ID, "src": "lettr-prod", "exp": str(NOW + 60)}), "no expiry", id="text"),
        pytest.param(b64_claims({"cid": CLIENT_ID, "src": "lettr-prod", "exp": True}), "no expiry", id="boolean-exp"),
    ],
)
def test_malformed_claims_are_refused_even_when_signed_with_the_right_key(payload: str, message: str) -> None:
    with pytest.raises(SignatureInvalid, match=message) as caught:
        verify(raw(bearer(signed_with_the_key(payload))), src=OAUTH, now=NOW)
    assert type(caught.value) is SignatureInvalid


def test_a_token_for_another_client_with_the_same_secret_is_refused() -> None:
    """The claims name the client whose key signed them; a shared secret does not make ids interchangeable."""
    src = source(options=oauth((CLIENT_ID, CLIENT_SECRET), ("second-client", "second-secret-0123456789")))
    impostor = OAuthClient(client_id="second-client", client_secret=CLIENT_SECRET)
    with pytest.raises(SignatureInvalid):
        verify(raw(bearer(mint(impostor, src.name, NOW + 600))), src=src, now=NOW)


def test_rotation_tokens_from_either_secret_verify_until_the_old_one_is_removed() -> None:
    both = source(options=oauth((CLIENT_ID, OLD_CLIENT_SECRET), (CLIENT_ID, CLIENT_SECRET)))
    old_token = token_for(both, now=NOW, secret=OLD_CLIENT_SECRET)
    new_token = token_for(both, now=NOW, secret=CLIENT_SECRET)
    for token in (old_token, new_token):
        verify(raw(bearer(token)), src=both, now=NOW)
    verify(raw(bearer(new_token)), src=OAUTH, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify(raw(bearer(old_token)), src=OAUTH, now=NOW)


def test_an_oauth2_only_source_needs_no_signature_header() -> None:
    verify(raw(bearer(TOKEN)), src=OAUTH, now=NOW)


# --- The token endpoint over HTTP (status codes) -------------------------------------------------

HTTP_YAML = f"""
kafka: {{bootstrap_servers: "127.0.0.1:1"}}
schema_registry: {{url: "mock://lettr"}}
sources:
  - name: lettr-oauth
    provider: lettr
    options: {{oauth2: {{clients: [{{client_id: {CLIENT_ID}, client_secret: {CLIENT_SECRET}}}]}}}}
  - {{name: lettr-signed, provider: lettr, secrets: [{SECRET}]}}
"""


@pytest.fixture
def http() -> Iterator[tuple[TestClient, FakePublisher]]:
    publisher = FakePublisher()
    settings = config.parse(HTTP_YAML, environ={})
    app = create_app(settings, publisher=publisher, client=MockRegistry("lettr"), clock=lambda: float(NOW))
    with TestClient(app) as test:
        wait_until_registered(test)
        yield test, publisher


def test_http_token_then_delivery(http: tuple[TestClient, FakePublisher]) -> None:
    client, publisher = http
    response = client.post("/webhooks/lettr-oauth/token", data=FORM)
    assert (response.status_code, response.headers["cache-control"]) == (200, "no-store")
    token = response.json()["access_token"]
    delivered = client.post("/webhooks/lettr-oauth", content=BODY, headers={"Authorization": f"Bearer {token}"})
    assert delivered.json() == {"status": "published", "events": ["e-1"]}
    assert [record.topic for record in publisher.records] == ["webhooks.message.delivered"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        pytest.param({**FORM, "client_secret": "guess"}, 401, "signature_invalid", id="bad-credentials"),
        pytest.param({**FORM, "grant_type": "password"}, 422, "payload_invalid", id="bad-grant-type"),
    ],
)
def test_http_token_errors(
    http: tuple[TestClient, FakePublisher], form: dict[str, str], status: int, error: str
) -> None:
    response = http[0].post("/webhooks/lettr-oauth/token", data=form)
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_http_a_delivery_without_a_token_gets_401(http: tuple[TestClient, FakePublisher]) -> None:
    client, publisher = http
    assert client.post("/webhooks/lettr-oauth", content=BODY).status_code == 401
    assert publisher.records == []


def test_http_a_source_without_oauth2_has_no_token_endpoint(http: tuple[TestClient, FakePublisher]) -> None:
    response = http[0].post("/webhooks/lettr-signed/token", data=FORM)
    assert (response.status_code, response.json()["error"]) == (404, "unknown_source")


# --- sign / example ------------------------------------------------------------------------------


def test_sign_reproduces_the_derived_vector() -> None:
    headers = {"lettr-signature": HEX_DIGEST, "Content-Type": "application/json"}
    assert signature_headers(BODY, SECRET) == headers
    assert SENDER.sign(BODY, SIGNED, T) == (BODY, headers)


def test_sign_uses_the_first_signature_secret() -> None:
    assert SENDER.sign(BODY, ROTATING_SIGNED, T)[1]["lettr-signature"] == hex_hmac("old-signing-secret", BODY)


@pytest.mark.parametrize("src", [BASIC, OAUTH], ids=["basic-only", "oauth2-only"])
def test_sign_without_a_signature_secret_says_what_it_cannot_do(src: LettrSource) -> None:
    with pytest.raises(ValueError, match="this source has none"):
        SENDER.sign(BODY, src, T)


SENDABLE = [
    "message.created",
    "message.delivered",
    "message.deferred",
    "message.soft_bounced",
    "message.hard_bounced",
    "message.spam_complaint",
    "message.failed",
    "message.policy_rejected",
    "message.opened",
    "message.clicked",
    "message.unsubscribed",
    "message.inbound",
]


@pytest.mark.parametrize("event_type", SENDABLE)
def test_example_signs_verifies_and_normalises(event_type: str) -> None:
    body = SENDER.example(event_type, NOW_DT)
    assert len(json.loads(body)) == 1
    signed, headers = SENDER.sign(body, SIGNED, NOW)
    assert signed == body
    verify(raw(*headers.items()), body=body, now=NOW)
    event = normalise(body)
    assert (event.event_type, event.occurred_at) == (event_type, NOW_DT)
    assert fits_schema(event)


def test_example_webhook_test_is_the_validation_ping() -> None:
    assert normalise(SENDER.example("webhook.test", NOW_DT)).event_type == "webhook.test"


@pytest.mark.parametrize("event_type", ["message.sent", "message.suppressed", "suppression.added", "message.read"])
def test_example_refuses_types_lettr_never_sends(event_type: str) -> None:
    with pytest.raises(ValueError, match=f"no event that maps to {event_type}"):
        SENDER.example(event_type, NOW_DT)


def test_examples_are_fresh_deliveries() -> None:
    first, second = (normalise(SENDER.example("message.delivered", NOW_DT)) for _ in range(2))
    assert first.event_id != second.event_id and first.message_id != second.message_id


# --- normalise: every fixture --------------------------------------------------------------------

EXPECTED = {
    "batch-sample.json": [
        "message.hard_bounced",
        "message.spam_complaint",
        "message.soft_bounced",
        "message.policy_rejected",
        "message.unsubscribed",
        "message.unsubscribed",
        "message.hard_bounced",
        "message.hard_bounced",
        "message.hard_bounced",
    ],
    "bounce-hard.json": ["message.hard_bounced"],
    "bounce-soft.json": ["message.soft_bounced"],
    "click.json": ["message.clicked"],
    "delay.json": ["message.deferred"],
    "delivery-lettr-docs.json": ["message.delivered"],
    "delivery.json": ["message.delivered"],
    "generation_failure.json": ["message.failed"],
    "generation_rejection.json": ["message.failed"],
    "initial_open.json": ["message.opened"],
    "injection.json": ["message.created"],
    "list_unsubscribe.json": ["message.unsubscribed"],
    "open.json": ["message.opened"],
    "ping.json": ["webhook.test"],
    "relay_delivery.json": ["message.inbound"],
    "relay_injection.json": [UNMAPPED],
    "relay_rejection.json": [UNMAPPED],
    "relay_tempfail.json": [UNMAPPED],
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(path.name for path in FIXTURE_FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_types(path: Path) -> None:
    assert [event.event_type for event in normalise_all(path.read_bytes())] == EXPECTED[path.name]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_common_fields(path: Path) -> None:
    elements = json.loads(path.read_bytes())
    for item, event in zip(elements, normalise_all(path.read_bytes()), strict=True):
        data = next(iter(item["msys"].values()), {})
        assert event.raw == json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        assert (event.provider, event.source, event.channel, event.received_at) == (
            "lettr",
            "lettr-prod",
            "email",
            RECEIVED,
        )
        assert event.provider_event == data.get("type", "ping")
        assert event.event_id == data.get("event_id", event.event_id) and event.event_id
        assert (event.message_id, event.recipient) == (data.get("message_id"), data.get("rcpt_to"))
        assert event.key == (data.get("message_id") or data.get("rcpt_to") or event.event_id)
        assert event.tags == tuple(data.get("rcpt_tags", ()))
        assert set(event.metadata) == set(data.get("rcpt_meta", {}))
        assert event.attempt is None


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=file_name)
def test_fixture_fits_avro_schema(path: Path) -> None:
    assert all(fits_schema(event) for event in normalise_all(path.read_bytes()))


SMTP_NONE = {"reason": None, "smtp_status_code": None, "smtp_enhanced_status_code": None, "smtp_response": None}
DETAILS = {
    "injection.json": {
        "subject": "Summer deals are here!",
        "from_address": "sender@example.com",
        "from_name": None,
        "to": [],
        "cc": ["recipient@example.com"],
        "bcc": [],
        "reply_to": None,
    },
    "delivery.json": SMTP_NONE,
    "bounce-hard.json": {
        "reason": "550 5.1.1 ...@... Recipient address rejected: ...",
        "smtp_status_code": 550,
        "smtp_enhanced_status_code": "5.1.1",
        "smtp_response": "550 5.1.1 <bounce@example.com>: Recipient address rejected: User unknown",
        "bounce_class": "10",
    },
    "bounce-soft.json": {
        "reason": "452 4.2.2 ...@...: Mailbox full",
        "smtp_status_code": 452,
        "smtp_enhanced_status_code": "4.2.2",
        "smtp_response": "452 4.2.2 <full@example.com>: Mailbox full",
        "bounce_class": "22",
    },
    "delay.json": {
        "reason": "454 4.4.4 [internal] no MX or A for domain",
        "smtp_status_code": 454,
        "smtp_enhanced_status_code": "4.4.4",
        "smtp_response": "454 4.4.4 [internal] no MX or A for domain",
        "bounce_class": "21",
    },
    "generation_failure.json": {
        "reason": "554 5.3.3 [internal] Error while rendering part html: ...",
        "smtp_status_code": 554,
        "smtp_enhanced_status_code": "5.3.3",
        "smtp_response": "554 5.3.3 [internal] Error while rendering part html: ...",
        "error_code": "554",
    },
    "open.json": {
        "subject": None,
        "first": None,
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_3) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/41.0.2272.118 Safari/537.36",
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": "127.0.0.1",
    },
    "click.json": {
        "subject": "Summer deals are here!",
        "first": None,
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_3) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/41.0.2272.118 Safari/537.36",
        "client_name": None,
        "client_type": None,
        "device_type": None,
        "is_bot": None,
        "ip": "127.0.0.1",
        "url": "http://example.com",
        "link_index": None,
    },
    "list_unsubscribe.json": {},
    "relay_delivery.json": {
        "subject": None,
        "from_address": "sender@example.com",
        "to": [],
        "route": None,
        "is_spam": None,
        "spam_score": None,
    },
    "relay_tempfail.json": {},
    "ping.json": {},
}


@pytest.mark.parametrize(("name", "details"), DETAILS.items(), ids=list(DETAILS))
def test_fixture_details(name: str, details: dict[str, Any]) -> None:
    [event] = fixture(name)
    assert dict(event.details) == details


def test_batch_details_spam_and_policy() -> None:
    events = fixture("batch-sample.json")
    assert dict(events[1].details) == {"feedback_type": "abuse"}
    assert dict(events[3].details) == {
        "subject": None,
        "reason": "MAIL REFUSED - IP (a.b.c.d) is in black list",
        "spam_score": None,
        "spam_symbols": [],
    }
    # "MAIL REFUSED - IP (18.99.99.99)": an IP address is not an enhanced status code.
    assert events[2].details["smtp_enhanced_status_code"] is None
    assert events[2].details["smtp_status_code"] == 554


@pytest.mark.parametrize(
    ("raw_reason", "enhanced"),
    [
        ("MAIL REFUSED - IP (5.99.99.99) is in black list", None),
        ("550 5.7.1 refused; see 4.2.2.1 of the policy", "5.7.1"),
        ("421 4.7.0 [TSS04] Messages from 192.0.2.5 temporarily deferred", "4.7.0"),
    ],
)
def test_the_enhanced_status_code_is_not_read_out_of_an_address(raw_reason: str, enhanced: str | None) -> None:
    event = normalise(batch(element(type="bounce", raw_reason=raw_reason)))
    assert event.details["smtp_enhanced_status_code"] == enhanced


def test_initial_open_is_a_first_open() -> None:
    [event] = fixture("initial_open.json")
    assert (event.event_type, event.details["first"]) == ("message.opened", True)


@pytest.mark.parametrize(
    ("name", "occurred_at"),
    [
        ("delivery.json", datetime(2016, 2, 2, 19, 50, tzinfo=UTC)),
        ("delivery-lettr-docs.json", datetime(2024, 1, 15, 10, 30, 5, tzinfo=UTC)),
        ("click.json", datetime(2016, 4, 18, 14, 25, 7, tzinfo=UTC)),
        ("generation_failure.json", datetime(2018, 10, 11, 23, 24, 45, tzinfo=UTC)),
        ("ping.json", RECEIVED),
    ],
)
def test_fixture_occurred_at(name: str, occurred_at: datetime) -> None:
    assert fixture(name)[0].occurred_at == occurred_at


def test_fixture_keys() -> None:
    assert fixture("bounce-hard.json")[0].key == "0004e3724f57753a3561"
    assert fixture("generation_failure.json")[0].key == "recipient@example.com"  # no message id: the address
    ping = fixture("ping.json")[0]
    assert ping.key == ping.event_id and ping.event_id.startswith("sha256:")


def test_metadata_is_stringified() -> None:
    [event] = fixture("click.json")
    assert dict(event.metadata) == {"customKey": "customValue", "anotherKey": '["value1","value2","value3"]'}


# --- normalise: mapping rules --------------------------------------------------------------------

HARD = [10, 25, 30, 80, 90]
SOFT = [1, 20, 21, 22, 23, 24, 40, 50, 51, 52, 53, 54, 60, 70, 100]


@pytest.mark.parametrize("kind", ["bounce", "out_of_band", "message.bounce", "message.out_of_band"])
@pytest.mark.parametrize("bounce_class", HARD + SOFT)
def test_bounce_classes(kind: str, bounce_class: int) -> None:
    event = normalise(batch(element(type=kind, bounce_class=str(bounce_class))))
    expected = "message.hard_bounced" if bounce_class in HARD else "message.soft_bounced"
    assert (event.event_type, event.details["bounce_class"]) == (expected, str(bounce_class))
    assert fits_schema(event)


@pytest.mark.parametrize(("value", "event_type"), [(10, "message.hard_bounced"), (None, "message.soft_bounced")])
@pytest.mark.parametrize("other", ["abc", "", "99999", "1.0"])
def test_bounce_class_forms(value: int | None, event_type: str, other: str) -> None:
    assert normalise(batch(element(type="bounce", bounce_class=value))).event_type == event_type
    assert normalise(batch(element(type="bounce", bounce_class=other))).event_type == "message.soft_bounced"


@pytest.mark.parametrize(
    ("kind", "event_type", "first"),
    [
        ("injection", "message.created", None),
        ("delivery", "message.delivered", None),
        ("message.delivery", "message.delivered", None),
        ("Delivery", "message.delivered", None),
        ("delay", "message.deferred", None),
        ("spam_complaint", "message.spam_complaint", None),
        ("policy_rejection", "message.policy_rejected", None),
        ("generation_failure", "message.failed", None),
        ("generation.generation_rejection", "message.failed", None),
        ("open", "message.opened", None),
        ("amp_open", "message.opened", None),
        ("initial_open", "message.opened", True),
        ("amp_initial_open", "message.opened", True),
        ("engagament.initial_open", "message.opened", True),
        ("engagement.amp_initial_open", "message.opened", True),
        ("engagament.open", "message.opened", None),
        ("click", "message.clicked", None),
        ("engagament.amp_click", "message.clicked", None),
        ("list_unsubscribe", "message.unsubscribed", None),
        ("unsubscribe.link_unsubscribe", "message.unsubscribed", None),
        ("relay_delivery", "message.inbound", None),
        ("relay.relay_delivery", "message.inbound", None),
    ],
)
def test_type_names_map_by_meaning(kind: str, event_type: str, first: bool | None) -> None:
    event = normalise(batch(element(type=kind)))
    assert (event.event_type, event.provider_event, event.details.get("first")) == (event_type, kind, first)
    assert fits_schema(event)


@pytest.mark.parametrize(
    "kind",
    [
        "relay_injection",
        "relay_rejection",
        "relay_tempfail",
        "relay_permfail",
        "relay.relay_permfail",
        "sms_status",
        "ab_test_completed",
        "message.teleported",
        "engagament.",
    ],
)
def test_types_without_a_canonical_name_are_unmapped(kind: str) -> None:
    event = normalise(batch(element(type=kind, planet="Mars")))
    assert (event.event_type, event.provider_event, event.key, dict(event.details)) == (UNMAPPED, kind, "m-1", {})
    assert '"planet":"Mars"' in event.raw
    assert fits_schema(event)


def test_the_category_does_not_decide_the_type() -> None:
    assert normalise(batch(element("ingest_event", type="delivery"))).event_type == "message.delivered"


def test_a_batch_fans_out_in_order_with_each_elements_raw() -> None:
    elements = [element(type="delivery", event_id="a"), element("track_event", type="click", event_id="b")]
    events = normalise_all(batch(*elements))
    assert [(e.event_id, e.event_type) for e in events] == [("a", "message.delivered"), ("b", "message.clicked")]
    assert [json.loads(e.raw) for e in events] == elements


def test_an_empty_batch_has_no_events() -> None:
    assert normalise_all(b"[]") == []


def test_raw_keeps_unicode_unescaped() -> None:
    event = normalise(batch(element(subject="Grüße 🌍")))
    assert "Grüße 🌍" in event.raw


@pytest.mark.parametrize(
    ("timestamp", "occurred_at"),
    [
        ("1454442600", datetime(2016, 2, 2, 19, 50, tzinfo=UTC)),
        (1454442600, datetime(2016, 2, 2, 19, 50, tzinfo=UTC)),
        ("1454442600.250", datetime(2016, 2, 2, 19, 50, 0, 250000, tzinfo=UTC)),
        (1454442600.5, datetime(2016, 2, 2, 19, 50, 0, 500000, tzinfo=UTC)),
        ("2024-01-15T10:30:05Z", datetime(2024, 1, 15, 10, 30, 5, tzinfo=UTC)),
        ("2024-01-15T12:30:05.000+02:00", datetime(2024, 1, 15, 10, 30, 5, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(timestamp: object, occurred_at: datetime) -> None:
    assert normalise(batch(element(timestamp=timestamp))).occurred_at == occurred_at


def test_missing_event_id_is_derived_deterministically() -> None:
    first = normalise(batch(element(event_id=None)))
    reordered = normalise(
        b'[ {"msys": {"message_event": {"timestamp": "1454442600", "message_id": "m-1", "type": "delivery"}}} ]'
    )
    other = normalise(batch(element(event_id=None, message_id="m-2")))
    assert first.event_id == reordered.event_id != other.event_id
    assert first.event_id.startswith("sha256:") and first.key == "m-1"


def test_an_id_field_stands_in_for_event_id() -> None:
    assert normalise(batch(element(event_id=None, id="evt_123"))).event_id == "evt_123"


def test_numeric_ids_are_text() -> None:
    event = normalise(batch(element(event_id=92356927693813856, message_id=42)))
    assert (event.event_id, event.message_id, event.key) == ("92356927693813856", "42", "42")


def test_key_falls_back_to_the_address_then_the_event_id() -> None:
    assert normalise(batch(element(message_id=None, rcpt_to="a@example.com"))).key == "a@example.com"
    assert normalise(batch(element(message_id=None, raw_rcpt_to="B@example.com"))).key == "B@example.com"
    assert normalise(batch(element(message_id=None))).key == "e-1"


def test_a_lone_surrogate_does_not_crash_normalise() -> None:
    event = normalise(b'[{"msys":{"message_event":{"type":"delivery","timestamp":"1","subject":"\\ud800"}}}]')
    assert event.event_id.startswith("sha256:")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"msys":{}}', id="object-not-array"),
        pytest.param(batch(element(), "delivery"), id="string-element"),
        pytest.param(batch(element(), None), id="null-element"),
        pytest.param(batch(element(), 42), id="number-element"),
        pytest.param(batch(element(), [element()]), id="nested-array"),
        pytest.param(batch(element(), {"cust": {"id": "1"}}), id="no-msys"),
        pytest.param(batch({"msys": []}), id="msys-array"),
        pytest.param(batch({"msys": "delivery"}), id="msys-string"),
        pytest.param(batch({"msys": {"message_event": {"type": "delivery"}, "track_event": {}}}), id="two-categories"),
        pytest.param(batch({"msys": {"message_event": "delivery"}}), id="category-not-object"),
        pytest.param(batch(element(type=None)), id="no-type"),
        pytest.param(batch(element(type="")), id="empty-type"),
        pytest.param(batch(element(type=7)), id="numeric-type"),
        pytest.param(batch(element(timestamp=None)), id="no-timestamp"),
        pytest.param(batch(element(timestamp="2024-01-15T10:30:05")), id="naive-timestamp"),
        pytest.param(batch(element(timestamp="yesterday")), id="bad-timestamp"),
        pytest.param(batch(element(timestamp=-5)), id="negative-timestamp"),
        pytest.param(batch(element(timestamp="1700000000000")), id="milliseconds-string"),
        pytest.param(batch(element(timestamp=1e20)), id="huge-timestamp"),
        pytest.param(batch(element(timestamp=True)), id="boolean-timestamp"),
        pytest.param(b'[{"msys":{"message_event":{"type":"delivery","timestamp":NaN}}}]', id="nan-timestamp"),
    ],
)
def test_payload_invalid(body: bytes) -> None:
    with pytest.raises(PayloadInvalid):
        normalise_all(body)


def test_one_bad_element_invalidates_the_whole_batch() -> None:
    with pytest.raises(PayloadInvalid, match=r"\[1\]"):
        normalise_all(batch(element(), "not an msys object", element()))


def test_utf16_body_is_payload_invalid() -> None:
    with pytest.raises(PayloadInvalid, match="not UTF-8"):
        normalise_all(BODY.decode().encode("utf-16"))


@pytest.mark.parametrize(
    ("pairs", "src", "now", "reason"),
    [
        pytest.param([], SIGNED, T, "missing_header", id="no-signature"),
        pytest.param(raw(("lettr-signature", "nonsense")), SIGNED, T, "malformed_header", id="malformed-signature"),
        pytest.param(raw(plain(OTHER)), SIGNED, T, "no_matching_signature", id="wrong-secret"),
        pytest.param(raw(timestamped()), SIGNED, T + 301, "stale_timestamp", id="stale"),
        pytest.param([], BASIC, T, "missing_header", id="no-authorization"),
        pytest.param(raw(basic(password="wrong")), BASIC, T, "bad_credentials", id="wrong-basic"),
        pytest.param(raw(bearer("v1.x.y")), OAUTH, NOW, "bad_credentials", id="forged-bearer"),
        pytest.param(raw(bearer("nonsense")), OAUTH, NOW, "malformed_header", id="not-our-token"),
        pytest.param(raw(bearer(token_for(now=NOW))), OAUTH, NOW + 600, "expired_token", id="expired-token"),
    ],
)
def test_reasons(pairs: Pairs, src: LettrSource, now: float, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(pairs, src=src, now=now)
    assert caught.value.reason == reason


def test_token_endpoint_reasons() -> None:
    with pytest.raises(SignatureInvalid) as missing:
        issue({"grant_type": "client_credentials"})
    with pytest.raises(SignatureInvalid) as wrong:
        issue({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong-secret-0123456789"})
    assert (missing.value.reason, wrong.value.reason) == ("missing_header", "bad_credentials")
