"""The HTTP adapter for `POST /webhooks/{source}` (and `/token`): Request → Delivery, Outcome → response.

Only this module and app.py know Starlette. Errors are raised, and app.py maps them to status codes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive

from bridge.errors import ClientAborted, PayloadTooLarge, UnknownSource
from bridge.events import Delivery
from bridge.headers import Headers, RawHeaders
from bridge.pipeline import DeadLettered, Duplicate, HandshakeReply, Outcome, Pipeline, Published
from bridge.routes import Routes

log = logging.getLogger(__name__)
TOKEN_REQUEST_MAX_BYTES = 4096


class JSONAnswer(JSONResponse):
    """Starlette's JSONResponse, rendered by orjson: the same compact UTF-8, in a fraction of the time.

    Text that is not valid Unicode (a lone surrogate quoted in a dead-letter reason) is written escaped,
    where Starlette's render would fail with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


class Webhooks:
    def __init__(
        self, pipeline: Pipeline, routes: Routes, max_body_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._pipeline = pipeline
        self._routes = routes
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    async def receive(self, source: str, headers: RawHeaders, receive: Receive) -> JSONAnswer:
        """`POST /webhooks/{source}`, given the raw ASGI parts: see app.py's direct route."""
        route = self._routes[source]
        route.admit(self._clock())
        request_headers = Headers(raw=headers)
        body = await read_body(request_headers.get("content-length", ""), receive, self._max_body_bytes)
        delivery = Delivery(
            source=route.source.name,
            provider=route.source.provider,
            headers=request_headers,
            body=body,
            received_at=received_at(self._clock()),
        )
        outcome = await self._pipeline.process(route, delivery)
        log.info("delivery %s", _word(outcome), extra=_fields(route.source.provider, delivery, outcome))
        return answer(outcome)

    async def token(self, request: Request) -> JSONAnswer:
        """`POST /webhooks/{source}/token`: OAuth2 client credentials, for providers that fetch a token."""
        route = self._routes[request.path_params["source"]]
        if route.issue_token is None:
            raise UnknownSource(f"source {route.source.name!r} ({route.source.provider}) has no token endpoint")
        body = await read_body(request.headers.get("content-length", ""), request.receive, TOKEN_REQUEST_MAX_BYTES)
        form = token_form(body, request.headers.get("content-type", ""))
        reply = route.issue_token(form, request.headers.get("authorization"), self._clock())
        if reply is None:
            raise UnknownSource(f"source {route.source.name!r} has no token endpoint configured")
        return JSONAnswer(reply, headers={"Cache-Control": "no-store"})


def _word(outcome: Outcome) -> str:
    words = {Published: "published", DeadLettered: "dead-lettered", Duplicate: "duplicate", HandshakeReply: "handshake"}
    return words[type(outcome)]


def _fields(provider: str, delivery: Delivery, outcome: Outcome) -> dict[str, object]:
    """The delivery's log fields: never a body or a header, so the line is safe to ship."""
    fields: dict[str, object] = {"source": delivery.source, "provider": provider}
    if isinstance(outcome, Published | Duplicate):
        fields["event_ids"] = [event.event_id for event in outcome.events]
    elif isinstance(outcome, DeadLettered):
        fields["reason"] = outcome.reason
    return fields


def received_at(now: float) -> datetime:
    """Milliseconds, as records carry it: a dead letter read back gives the same Delivery."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def answer(outcome: Outcome) -> JSONAnswer:
    if isinstance(outcome, HandshakeReply):
        return JSONAnswer(outcome.body)
    if isinstance(outcome, DeadLettered):
        return JSONAnswer({"status": "dead-lettered", "reason": outcome.reason})
    if isinstance(outcome, Duplicate):
        return JSONAnswer({"status": "duplicate", "events": [event.event_id for event in outcome.events]})
    reply: dict[str, object] = {"status": "published", "events": [event.event_id for event in outcome.events]}
    if outcome.filtered:
        reply["filtered"] = [event.event_id for event in outcome.filtered]
    return JSONAnswer(reply)


def token_form(body: bytes, content_type: str) -> dict[str, str]:
    """RFC 6749 asks for a form; a JSON object of strings is accepted too (Lettr does not say which)."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply, too many digits
        return {}
    return {str(key): item for key, item in value.items() if isinstance(item, str)} if isinstance(value, dict) else {}


async def read_body(declared: str, receive: Receive, limit: int) -> bytes:
    """The request body from ASGI `receive`, refused beyond `limit` bytes (at once if `declared` says so)."""
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # gone, or cut off by the server's body deadline: nobody to answer
            raise ClientAborted(f"the client went away after {size} bytes of the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
