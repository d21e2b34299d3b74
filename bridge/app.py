"""create_app: routes, the one error-to-HTTP map, and the lifespan (one exit stack for every component)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.avro import Encoder, load_schemas
from bridge.config import Settings
from bridge.dedupe import RecentDeliveries
from bridge.errors import (
    BridgeError,
    ClientAborted,
    MethodNotAllowed,
    RateLimited,
    RegistryUnavailable,
    SignatureInvalid,
    Unavailable,
)
from bridge.logs import RequestId
from bridge.metrics import Metrics
from bridge.pipeline import Pipeline
from bridge.providers import build as build_providers
from bridge.providers.base import Provider
from bridge.publisher import KafkaPublisher, Publisher, TopicPlan
from bridge.records import record_limit, topic_limit
from bridge.routes import Routes
from bridge.topics import topic_specs
from bridge.webhooks import JSONAnswer, Webhooks

log = logging.getLogger(__name__)
REGISTRY_RETRY_SECONDS = 5.0
REFUSED_RETRY_SECONDS = 30.0  # a refusal (409, 422) needs a person: not worth asking often
REGISTRY_TIMEOUT_SECONDS = 5
UNKNOWN_SOURCE_LABEL = "(unknown)"
WEBHOOK_PATH = re.compile(r"/webhooks/([^/]+)(?:/token)?")
DELIVERY_PATH = re.compile(r"/webhooks/([^/]+)")


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """The registry client every command uses: `schema_registry.client` plus its TLS and credentials."""
    registry = settings.schema_registry
    return SchemaRegistryClient({"url": registry.url, "timeout": REGISTRY_TIMEOUT_SECONDS, **registry.client_config()})


def max_record_bytes(settings: Settings) -> int:
    return record_limit(settings.server.max_body_bytes, settings.server.max_header_bytes)


def source_label(routes: Routes, name: str) -> str:
    """A metric label: configured names only, so unauthenticated callers cannot add series."""
    return name if name in routes else UNKNOWN_SOURCE_LABEL


class BridgeApp(Starlette):
    """Starlette with the request counter outside its error middleware, so 500s are counted too."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        webhook_routes: Routes,
        webhooks: Webhooks,
        error_answer: Callable[[str, BridgeError], Response],
        draining: Draining,
        management: ASGIApp | None,
        **kwargs: Any,
    ) -> None:
        self.metrics = metrics  # the server counts what its limits refuse into the same registry
        self.webhook_routes = webhook_routes
        self._webhooks = webhooks
        self._error_answer = error_answer
        self._draining = draining
        # With server.management_port: /healthz, /readyz and /metrics, for the server's other listener.
        self.management = management
        super().__init__(**kwargs)

    @property
    def shutting_down(self) -> bool:
        return self._draining.shutting_down

    @shutting_down.setter
    def shutting_down(self, value: bool) -> None:
        # Set by the server the moment SIGTERM arrives (bridge/server.py): /readyz answers 503 from then on.
        self._draining.shutting_down = value

    def build_middleware_stack(self) -> ASGIApp:
        # Outermost: every answer, a 500 too, is counted and carries its X-Request-ID.
        direct = _DirectDeliveries(super().build_middleware_stack(), self._webhooks, self._error_answer)
        return RequestId(_CountStatus(direct, self.metrics, self.webhook_routes))


def create_app(
    settings: Settings,
    publisher: Publisher | None = None,
    client: SchemaRegistryClient | None = None,
    clock: Callable[[], float] | None = None,
    providers: Mapping[str, Provider[Any]] | None = None,
) -> BridgeApp:
    """The bridge as an ASGI app. Tests pass a fake publisher, a mock:// registry, a clock and providers."""
    metrics = Metrics()
    registry = client or registry_client(settings)
    encoder = Encoder(registry, load_schemas(), settings.topics.prefix)
    kafka = publisher if publisher is not None else kafka_publisher(settings, metrics.kafka.update)
    metrics.producer_fatal.set_function(lambda: kafka.fatal is not None)
    metrics.producer_queue.set_function(lambda: kafka.queued)
    recent = RecentDeliveries(settings.server.dedupe_seconds, settings.server.dedupe_max_entries)
    pipeline = Pipeline(encoder, kafka, metrics, settings.topics.prefix, max_record_bytes(settings), recent)
    routes = Routes(settings.sources, providers if providers is not None else build_providers())
    webhooks = Webhooks(pipeline, routes, settings.server.max_body_bytes, **({"clock": clock} if clock else {}))
    registration = Registration()
    draining = Draining()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(registry.close)
            await stack.enter_async_context(kafka)
            registering = asyncio.create_task(_register_until_done(encoder, settings, metrics, registration))
            stack.callback(registering.cancel)
            # What start-up built lives as long as the process: out of the collector's sight, the full
            # collections that requests' garbage triggers do not walk it again each time.
            gc.collect()
            gc.freeze()
            stack.callback(gc.unfreeze)
            yield

    async def healthz(request: Request) -> JSONAnswer:
        if kafka.fatal is not None:
            return JSONAnswer({"status": "failed", "kafka_fatal": kafka.fatal}, status_code=503)
        return JSONAnswer({"status": "ok"})

    async def readyz(request: Request) -> JSONAnswer:
        if draining.shutting_down:  # draining: not worth a metadata request, and never ready again
            metrics.ready.set(0)
            return JSONAnswer({"ready": False, "shutting_down": True}, status_code=503)
        checks: dict[str, object] = {"schemas_registered": encoder.registered, "kafka": await kafka.ready()}
        ready = all(checks.values())
        metrics.ready.set(ready)
        problems = kafka.problems() + (
            [registration.problem] if registration.problem and not encoder.registered else []
        )
        return JSONAnswer(
            {"ready": ready, **checks, **({"problems": problems} if problems else {})},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def bridge_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, BridgeError)
        return error_answer(request.path_params.get("source", ""), error)

    def error_answer(source_name: str, error: BridgeError) -> Response:
        """The one map from an error to its answer: status and code from the error's class, Retry-After."""
        source = source_label(routes, source_name)
        metrics.rejected.labels(source, error.code).inc()
        if isinstance(error, SignatureInvalid):
            metrics.verification_failed(source, error.reason)
        if isinstance(error, RateLimited):
            metrics.rate_limited.labels(source).inc()
        if isinstance(error, ClientAborted):
            metrics.aborted.labels(source).inc()
            log.info("client went away before its body was read", extra={"source": source, "code": error.code})
        elif error.status_code >= 500:
            log.warning("%s: %s", error.code, error, extra={"source": source, "code": error.code})
        retry_after = error.retry_after or (
            settings.server.retry_after_seconds if isinstance(error, Unavailable) else None
        )
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return JSONAnswer({"error": error.code, "detail": str(error)}, status_code=error.status_code, headers=headers)

    probes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]
    apart = settings.server.management_port is not None
    return BridgeApp(
        metrics=metrics,
        webhook_routes=routes,
        webhooks=webhooks,
        error_answer=error_answer,
        draining=draining,
        management=Router(probes) if apart else None,
        # POST /webhooks/{source} itself is _DirectDeliveries'.
        routes=[Route("/webhooks/{source}/token", webhooks.token, methods=["POST"]), *([] if apart else probes)],
        exception_handlers={BridgeError: bridge_error},
        lifespan=lifespan,
    )


def kafka_publisher(settings: Settings, statistics: Callable[[str], None] | None = None) -> KafkaPublisher:
    records = max_record_bytes(settings)
    plan = TopicPlan(topic_specs(settings), max_message_bytes=topic_limit(records), create=settings.topics.create)
    return KafkaPublisher(
        settings.kafka.bootstrap_servers,
        settings.kafka.producer,
        settings.server.publish_timeout_seconds,
        shutdown_timeout=settings.server.shutdown_timeout_seconds,
        topics=plan,
        max_record_bytes=records,
        statistics=statistics,
    )


class _DirectDeliveries:
    """`/webhooks/{source}` straight to `Webhooks.receive`, past Starlette's router, Request object and
    exception middleware: against raw ASGI on the same server they cost 13 µs a request, a tenth of a
    delivery's (make bench). Errors get `error_answer`, as through Starlette's handler; anything else
    is answered 500 as Starlette's ServerErrorMiddleware answers it, and raised on for uvicorn to log."""

    def __init__(self, app: ASGIApp, webhooks: Webhooks, error_answer: Callable[[str, BridgeError], Response]) -> None:
        self._app = app
        self._webhooks = webhooks
        self._error_answer = error_answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delivery = DELIVERY_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if delivery is None:
            await self._app(scope, receive, send)
            return
        source = delivery.group(1)
        response: Response
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(f"{scope['method']} is not allowed on /webhooks/{{source}}: POST only")
            response = await self._webhooks.receive(source, scope["headers"], receive)
        except BridgeError as error:
            response = self._error_answer(source, error)
            if isinstance(error, MethodNotAllowed):
                response.headers["allow"] = "POST"
        except Exception:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await response(scope, receive, send)


class _CountStatus:
    """Counts answered webhook deliveries by source and status (and its class), 500s included; times them and
    counts those in progress. Per request: one cached lookup, one counter increment, one histogram observe."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Routes) -> None:
        self._app = app
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhook = WEBHOOK_PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if webhook is None:
            await self._app(scope, receive, send)
            return
        source = source_label(self._routes, webhook.group(1))
        started = time.perf_counter()
        answered: Histogram | None = None

        async def counting_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                requests, answered = self._metrics.answers(source, int(message["status"]))
                requests.inc()
            await send(message)

        in_flight = self._metrics.in_flight
        in_flight.count += 1
        try:
            await self._app(scope, receive, counting_send)
        finally:
            in_flight.count -= 1
            if answered is not None:
                answered.observe(time.perf_counter() - started)


@dataclass
class Draining:
    """Whether a shutdown has begun; shared by the app and its management endpoints."""

    shutting_down: bool = False


@dataclass
class Registration:
    """Why the schemas are not registered yet, for /readyz's problems (None: nothing failed so far)."""

    problem: str | None = None


async def _register_until_done(
    encoder: Encoder, settings: Settings, metrics: Metrics, registration: Registration
) -> None:
    """Register every schema, retrying while the registry is unreachable; /readyz waits for it."""
    while True:
        try:
            ids = await asyncio.to_thread(encoder.register, settings.schema_registry.auto_register)
        except RegistryUnavailable as error:
            registration.problem = f"schema registry: {error}"
            log.warning("%s; retrying in %g s", error, REGISTRY_RETRY_SECONDS)
            await asyncio.sleep(REGISTRY_RETRY_SECONDS)
            continue
        except Exception as error:  # noqa: BLE001 - an incompatible schema, say: said, and never silently given up
            registration.problem = f"schema registry: registering the schemas failed: {error}"
            log.error(
                "registering the schemas failed: %s; /readyz stays 503; retrying in %g s", error, REFUSED_RETRY_SECONDS
            )
            await asyncio.sleep(REFUSED_RETRY_SECONDS)
            continue
        registration.problem = None
        metrics.schemas_registered.set(1)
        log.info("schemas registered: %d subjects", len(ids))
        return
