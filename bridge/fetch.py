"""HTTP GET for providers that must fetch something (SNS certificates, subscription URLs): short, bounded, injected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

FETCH_TIMEOUT_SECONDS = 5.0
FETCH_MAX_BYTES = 64 * 1024

HttpGet = Callable[[str], Awaitable[bytes]]


class FetchError(Exception):
    """A GET that did not answer 2xx; `status` is None where nothing answered (timeout, refused)."""

    def __init__(self, url: str, status: int | None, detail: str) -> None:
        super().__init__(f"GET {url}: {detail}")
        self.status = status


def http_getter(transport: httpx.AsyncBaseTransport | None = None) -> HttpGet:
    """One short-timeout GET, no redirects, at most FETCH_MAX_BYTES (tests pass a transport)."""

    async def get(url: str) -> bytes:
        try:
            async with (
                httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False, transport=transport) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    raise FetchError(url, response.status_code, f"HTTP {response.status_code}")
                return await _read_limited(url, response)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise FetchError(url, None, str(error) or type(error).__name__) from error

    return get


async def _read_limited(url: str, response: httpx.Response) -> bytes:
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > FETCH_MAX_BYTES:
            raise FetchError(url, response.status_code, f"answer longer than {FETCH_MAX_BYTES} bytes")
    return bytes(content)
