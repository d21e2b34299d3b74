"""Lettr's Authorization credentials: HTTP Basic pairs, and the OAuth2 Bearer tokens the bridge issues.

Pure: the clock is passed in, and a token is checked against the configuration alone (there is no
token store), so any replica accepts any replica's token (docs/providers.md#lettr-lettr).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from pydantic import Field, SecretStr, field_validator

from bridge.errors import PayloadInvalid, SignatureInvalid, StaleTimestamp
from bridge.providers.auth import BasicCredential, credential, decode_basic, same
from bridge.settings import ConfigModel

GRANT_TYPE = "client_credentials"
TOKEN_VERSION = "v1"
# The token key is derived from the client secret, never the secret itself, and bound to this use.
TOKEN_KEY_LABEL = b"webhook-kafka-bridge/lettr/oauth2-access-token/v1"
DEFAULT_TOKEN_TTL_SECONDS = 600
# The secret keys the token HMAC: a captured token must not be brute-forceable offline.
MIN_CLIENT_SECRET_CHARS = 16


class OAuthClient(ConfigModel):
    client_id: str = Field(min_length=1)
    client_secret: SecretStr

    @field_validator("client_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_CLIENT_SECRET_CHARS:
            raise ValueError(f"needs at least {MIN_CLIENT_SECRET_CHARS} characters (it keys the token signature)")
        return value


class OAuth2Options(ConfigModel):
    # Several entries (the same client_id twice, too) while a secret is rotated.
    clients: list[OAuthClient] = Field(min_length=1)
    token_ttl_seconds: int = Field(DEFAULT_TOKEN_TTL_SECONDS, ge=30, le=86_400)


# --- HTTP Basic ----------------------------------------------------------------------------------


def check_basic(header: str, credentials: Sequence[BasicCredential]) -> None:
    """Raise SignatureInvalid unless the `Authorization: Basic` value is one of the configured pairs."""
    user, password = decode_basic(header)
    # Every pair is compared, both halves, with no early exit (`&`, a list, then any), so the time
    # taken does not say which pair, or which half, matched.
    matches = [
        same(user, pair.username.encode()) & same(password, pair.password.get_secret_value().encode())
        for pair in credentials
    ]
    if not any(matches):
        raise SignatureInvalid("the Basic credentials match no configured pair", "bad_credentials")


# --- OAuth2: the token endpoint (RFC 6749 §4.4, client credentials) ------------------------------


def token_response(
    form: Mapping[str, str], authorization: str | None, oauth: OAuth2Options, source: str, now: float
) -> dict[str, Any]:
    """The RFC 6749 §5.1 answer for valid client credentials; SignatureInvalid or PayloadInvalid otherwise."""
    # The client is authenticated before the grant type is looked at: an unauthenticated caller
    # learns nothing about what the endpoint accepts.
    client = authenticate_client(client_credentials(form, authorization), oauth.clients)
    if form.get("grant_type") != GRANT_TYPE:
        raise PayloadInvalid(f"grant_type must be {GRANT_TYPE}")
    token = mint(client, source, int(now) + oauth.token_ttl_seconds)
    return {"access_token": token, "token_type": "Bearer", "expires_in": oauth.token_ttl_seconds}


def client_credentials(form: Mapping[str, str], authorization: str | None) -> list[tuple[bytes, bytes]]:
    """Candidate (client_id, client_secret) pairs, from HTTP Basic or from the form (RFC 6749 §2.3.1)."""
    basic = authorization is not None and authorization.strip()[:6].lower() == "basic "
    if basic and "client_secret" in form:
        raise SignatureInvalid(
            "client credentials sent both as Basic and in the form; use one method", "malformed_header"
        )
    if basic:
        user, password = decode_basic(authorization or "")
        # The RFC form-encodes them before base64; many clients do not. Either is accepted.
        decoded = (unquote_to_bytes(user.replace(b"+", b" ")), unquote_to_bytes(password.replace(b"+", b" ")))
        return [(user, password), decoded]
    if "client_id" not in form or "client_secret" not in form:
        raise SignatureInvalid(
            "no client credentials (Basic, or client_id and client_secret in the form)", "missing_header"
        )
    return [(form["client_id"].encode(), form["client_secret"].encode())]


def authenticate_client(candidates: list[tuple[bytes, bytes]], clients: Sequence[OAuthClient]) -> OAuthClient:
    """The configured client the credentials belong to; every candidate is compared with every client."""
    matches = [
        (
            same(client_id, client.client_id.encode()) & same(secret, client.client_secret.get_secret_value().encode()),
            client,
        )
        for client_id, secret in candidates
        for client in clients
    ]
    owner = next((client for matched, client in matches if matched), None)
    if owner is None:
        raise SignatureInvalid("the client credentials match no configured OAuth2 client", "bad_credentials")
    return owner


# --- OAuth2: stateless tokens --------------------------------------------------------------------


def mint(client: OAuthClient, source: str, expires: int) -> str:
    """`v1.<base64url claims>.<base64url HMAC>`: claims {cid, src, exp}, key derived from the client secret."""
    claims = json.dumps({"cid": client.client_id, "src": source, "exp": expires}, separators=(",", ":"))
    signed = f"{TOKEN_VERSION}.{_b64(claims.encode())}"
    return f"{signed}.{_token_signature(client, signed)}"


def check_bearer(header: str, clients: Sequence[OAuthClient], source: str, now: float) -> None:
    """Raise SignatureInvalid unless the `Authorization: Bearer` token is one we issued for `source`,
    StaleTimestamp once it has expired."""
    signed, dot, signature = credential(header, "Bearer").rpartition(".")
    version, _, payload = signed.partition(".")
    if not dot or version != TOKEN_VERSION:
        raise SignatureInvalid("the Bearer token is not one this bridge issued", "malformed_header")
    # The signature is checked against every client's key before the claims are read: nothing
    # unauthenticated is parsed.
    given = signature.encode()
    matches = [(same(_token_signature(client, signed).encode(), given), client) for client in clients]
    owner = next((client for matched, client in matches if matched), None)
    if owner is None:
        raise SignatureInvalid("the Bearer token's signature matches no configured OAuth2 client", "bad_credentials")
    claims = _claims(payload)
    # A shared secret must not make client ids interchangeable, nor a token travel between sources.
    if claims.get("cid") != owner.client_id or claims.get("src") != source:
        raise SignatureInvalid("the Bearer token was issued for another client or source", "bad_credentials")
    expires = claims.get("exp")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise SignatureInvalid("the Bearer token has no expiry", "bad_credentials")
    if now >= expires:
        raise StaleTimestamp(f"the Bearer token expired {int(now) - expires} s ago", "expired_token")


def _token_signature(client: OAuthClient, signed: str) -> str:
    key = hmac.new(client.client_secret.get_secret_value().encode(), TOKEN_KEY_LABEL, hashlib.sha256).digest()
    return _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def _claims(payload: str) -> dict[str, Any]:
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError, RecursionError):  # ValueError: bad base64, bad JSON, too many digits
        raise SignatureInvalid("the Bearer token's claims are unreadable", "bad_credentials") from None
    if not isinstance(claims, dict):
        raise SignatureInvalid("the Bearer token's claims are not an object", "bad_credentials")
    return claims


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
