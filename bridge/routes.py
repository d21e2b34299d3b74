"""Routes: each configured source, resolved once at start-up into its provider and optional capabilities."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.errors import RateLimited, UnknownSource
from bridge.events import Delivery
from bridge.headers import Headers
from bridge.providers.base import Handshaker, Preparer, Provider, TokenIssuer
from bridge.settings import RateLimit, SourceSettings

Prepare = Callable[[Headers, bytes, float], Awaitable[None]]
Handshake = Callable[[Delivery], Awaitable[dict[str, Any] | None]]
IssueToken = Callable[[Mapping[str, str], str | None, float], dict[str, Any] | None]


class TokenBucket:
    """`per_second` tokens a second, at most `burst` held; `take` spends one or says how long until one is back."""

    def __init__(self, limit: RateLimit) -> None:
        self._rate = limit.per_second
        self._burst = float(limit.burst)
        self._tokens = float(limit.burst)
        self._updated: float | None = None

    def take(self, now: float) -> float:
        """0 if a token was spent, else the seconds until the next one."""
        elapsed = 0.0 if self._updated is None else max(0.0, now - self._updated)
        self._tokens, self._updated = min(self._burst, self._tokens + elapsed * self._rate), now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


@dataclass(frozen=True)
class Route:
    """One source: what the request path needs, with nothing left to look up or discover."""

    source: SourceSettings
    provider: Provider[Any]
    private_headers: frozenset[str]
    prepare: Prepare | None = None
    handshake: Handshake | None = None
    issue_token: IssueToken | None = None
    bucket: TokenBucket | None = None

    @classmethod
    def build(cls, source: SourceSettings, provider: Provider[Any]) -> Route:
        return cls(
            source=source,
            provider=provider,
            private_headers=source.private_headers(),
            prepare=_bind_prepare(provider, source),
            handshake=_bind_handshake(provider, source),
            issue_token=_bind_token(provider, source),
            bucket=TokenBucket(source.rate_limit) if source.rate_limit is not None else None,
        )

    def admit(self, now: float) -> None:
        """Raise RateLimited when the source's rate limit (if any) is spent."""
        wait = self.bucket.take(now) if self.bucket is not None else 0.0
        if wait > 0:
            raise RateLimited(
                f"source {self.source.name!r} is over its rate limit", retry_after=max(1, math.ceil(wait))
            )

    def verify(self, headers: Headers, body: bytes, now: float) -> None:
        self.provider.verify(headers, body, self.source, now)


class Routes:
    """Source name → Route, for the sources in the configuration."""

    def __init__(self, sources: list[SourceSettings], providers: Mapping[str, Provider[Any]]) -> None:
        missing = sorted({source.provider for source in sources} - providers.keys())
        if missing:
            raise ValueError(f"no provider object for {', '.join(missing)}; given: {', '.join(sorted(providers))}")
        self._routes = {source.name: Route.build(source, providers[source.provider]) for source in sources}

    def __getitem__(self, name: str) -> Route:
        route = self._routes.get(name)
        if route is None:
            raise UnknownSource(f"no source named {name!r} is configured")
        return route

    def __contains__(self, name: str) -> bool:
        return name in self._routes


def _bind_prepare(provider: Provider[Any], source: SourceSettings) -> Prepare | None:
    if not isinstance(provider, Preparer):
        return None
    prepare = provider.prepare
    return lambda headers, body, now: prepare(headers, body, source, now)


def _bind_handshake(provider: Provider[Any], source: SourceSettings) -> Handshake | None:
    if not isinstance(provider, Handshaker):
        return None
    handshake = provider.handshake
    return lambda delivery: handshake(delivery, source)


def _bind_token(provider: Provider[Any], source: SourceSettings) -> IssueToken | None:
    if not isinstance(provider, TokenIssuer):
        return None
    issue = provider.issue_token
    return lambda form, authorization, now: issue(form, authorization, source, now)
