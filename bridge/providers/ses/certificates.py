"""SNS signing keys by certificate URL: a source's pinned ones, else fetched through an injected getter and cached."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.errors import SignatureInvalid, Unavailable
from bridge.fetch import FetchError, HttpGet
from bridge.providers.ses.sns import PEM_SUFFIX, certificate_key, sns_url

CERTIFICATE_CACHE_SIZE = 32
# Certificate URLs name one certificate each (AWS rotates by publishing a new URL), so a long TTL is safe.
CERTIFICATE_TTL_SECONDS = 6 * 3600


class CertificateCache:
    """Public keys by certificate URL, least recently used evicted first, each kept `ttl` seconds."""

    def __init__(self, size: int = CERTIFICATE_CACHE_SIZE, ttl: float = CERTIFICATE_TTL_SECONDS) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[float, rsa.RSAPublicKey]] = OrderedDict()

    def get(self, url: str, now: float) -> rsa.RSAPublicKey | None:
        entry = self._entries.get(url)
        if entry is None or entry[0] <= now:
            self._entries.pop(url, None)
            return None
        self._entries.move_to_end(url)
        return entry[1]

    def put(self, url: str, key: rsa.RSAPublicKey, now: float) -> None:
        self._entries[url] = (now + self._ttl, key)
        self._entries.move_to_end(url)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def pinned_key(url: str, pem: str) -> rsa.RSAPublicKey:
    """A certificate of `options.certificates`: pinned under a URL SNS could name, else SignatureInvalid."""
    sns_url(url, "URL", PEM_SUFFIX)
    return certificate_key(pem.encode())


def known_key(
    url: str, pinned: Mapping[str, rsa.RSAPublicKey], cache: CertificateCache, now: float
) -> rsa.RSAPublicKey | None:
    """The key for `url` without fetching: pinned first (never expires), then cached."""
    key = pinned.get(url)
    return key if key is not None else cache.get(url, now)


async def fetch_key(url: str, get: HttpGet) -> rsa.RSAPublicKey:
    """GET the certificate at `url` (already checked to be an SNS URL) and take its key."""
    try:
        pem = await get(url)
    except FetchError as error:
        # A 4xx from an SNS host means there is no such certificate; anything else may pass.
        if error.status is not None and 400 <= error.status < 500:
            raise SignatureInvalid(f"signing certificate: {error}", "certificate_fetch_failed") from None
        raise Unavailable(f"signing certificate: {error}") from None
    return certificate_key(pem)
