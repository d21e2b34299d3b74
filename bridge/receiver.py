"""POST /webhooks/{source}: raw body → verify → normalise → encode → publish → 200 after the ack."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from bridge.avro import Encoder
from bridge.errors import PayloadInvalid, PayloadTooLarge, UnknownSource
from bridge.events import DEAD_LETTER, UNMAPPED, CanonicalEvent, Delivery, topic_for
from bridge.metrics import Metrics
from bridge.providers import PROVIDERS
from bridge.providers.base import Handshake, PrivateHeaders, TokenIssuer
from bridge.publisher import Publisher, Record
from bridge.settings import Settings, SourceSettings

# Request headers never copied into dead-letter records: credentials (providers may add theirs).
PRIVATE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
TOKEN_REQUEST_MAX_BYTES = 4096


class Receiver:
    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        publisher: Publisher,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock

    async def receive(self, request: Request) -> JSONResponse:
        source = self._source(request.path_params["source"])
        body = await _read_body(request, self._settings.server.max_body_bytes)
        now = self._clock()
        provider = PROVIDERS[source.provider]
        verified = provider.verify(request.headers, body, source, now)
        if inspect.isawaitable(verified):
            await verified
        delivery = Delivery(source.name, provider.name, request.headers, body, datetime.fromtimestamp(now, UTC))
        if isinstance(provider, Handshake) and (reply := await provider.handshake(delivery, source)) is not None:
            self._metrics.handshakes.labels(source.name, str(reply.get("status", ""))).inc()
            return JSONResponse(reply)
        try:
            events = provider.normalise(delivery)
            wanted = [event for event in events if source.publishes(event.event_type)]
            records = [self._record(event) for event in wanted]
        except PayloadInvalid as error:
            private = PRIVATE_HEADERS | (
                provider.private_headers(source) if isinstance(provider, PrivateHeaders) else set()
            )
            await self._publish([_dead_letter_record(self._settings.topics.prefix, delivery, str(error), private)])
            self._metrics.dead_letters.labels(source.name).inc()
            return JSONResponse({"status": "dead-lettered", "reason": str(error)})
        if records:
            await self._publish(records)
        filtered = [event for event in events if not source.publishes(event.event_type)]
        self._count(wanted, filtered)
        answer: dict[str, object] = {"status": "published", "events": [event.event_id for event in wanted]}
        if filtered:
            answer["filtered"] = [event.event_id for event in filtered]
        return JSONResponse(answer)

    async def token(self, request: Request) -> JSONResponse:
        """`POST /webhooks/{source}/token`: OAuth2 client credentials, for providers that fetch a token."""
        source = self._source(request.path_params["source"])
        provider = PROVIDERS[source.provider]
        if not isinstance(provider, TokenIssuer):
            raise UnknownSource(f"source {source.name!r} ({provider.name}) has no token endpoint")
        body = await _read_body(request, TOKEN_REQUEST_MAX_BYTES)
        form = _token_form(body, request.headers.get("content-type", ""))
        answer = provider.issue_token(form, request.headers.get("authorization"), source, self._clock())
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    def _source(self, name: str) -> SourceSettings:
        source = self._settings.source(name)
        if source is None:
            raise UnknownSource(f"no source named {name!r} is configured")
        return source

    def _record(self, event: CanonicalEvent) -> Record:
        # Encode first: it rejects text with lone surrogates, which key and headers carry too.
        value = self._encoder.encode(event)
        return Record(
            topic=topic_for(self._settings.topics.prefix, event.event_type),
            key=event.key.encode(),
            value=value,
            headers=[
                ("event_id", event.event_id.encode()),
                ("event_type", event.event_type.encode()),
                ("provider", event.provider.encode()),
                ("source", event.source.encode()),
                ("attempt", b"" if event.attempt is None else str(event.attempt).encode()),
                ("received_at", event.received_at.isoformat(timespec="milliseconds").encode()),
            ],
        )

    async def _publish(self, records: list[Record]) -> None:
        started = time.perf_counter()
        await self._publisher.publish(records)
        self._metrics.publish_seconds.observe(time.perf_counter() - started)

    def _count(self, published: list[CanonicalEvent], filtered: list[CanonicalEvent]) -> None:
        for event in filtered:
            self._metrics.filtered.labels(event.source, event.event_type).inc()
        for event in published:
            self._metrics.events.labels(event.source, event.event_type).inc()
            if event.event_type == UNMAPPED:
                self._metrics.unmapped.labels(event.source, event.provider_event).inc()


def _token_form(body: bytes, content_type: str) -> dict[str, str]:
    """RFC 6749 asks for a form; a JSON object of strings is accepted too (Lettr does not say which)."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return {str(key): item for key, item in value.items() if isinstance(item, str)} if isinstance(value, dict) else {}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _dead_letter_record(prefix: str, delivery: Delivery, reason: str, private: frozenset[str]) -> Record:
    """The raw body, whole, with why and where from in headers, so it can be replayed after a fix."""
    headers: list[tuple[str, str | bytes | None]] = [
        ("dead_letter_reason", reason.encode()),
        ("provider", delivery.provider.encode()),
        ("source", delivery.source.encode()),
        ("received_at", delivery.received_at.isoformat(timespec="milliseconds").encode()),
    ]
    headers += [
        (f"http.{name.decode('latin-1')}", value)
        for name, value in delivery.headers.raw
        if name.decode("latin-1") not in private
    ]
    return Record(
        topic=topic_for(prefix, DEAD_LETTER), key=delivery.source.encode(), value=delivery.body, headers=headers
    )
