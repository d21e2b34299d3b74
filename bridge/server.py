"""The HTTP server: uvicorn on uvloop + httptools, with deadlines and caps that cut off slow and greedy clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar, cast

import httptools
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import HANDLED_SIGNALS, ServerState

from bridge import logs
from bridge.settings import ServerSettings

log = logging.getLogger("bridge.server")

# After an error answer the connection stays half-open this long, discarding what the client still sends:
# closing a socket with unread input makes the kernel send a reset, which can destroy the answer unread.
LINGER_SECONDS = 1.0
# A chunked body's framing (size lines, CRLFs, trailers) is fed to the parser but is not body. A real chunk
# needs a few dozen bytes of it; beyond max_header_bytes plus this per chunk, it is a trailer flood.
CHUNK_FRAMING_BYTES = 64

# Where the parser is in the current request. Between requests (IDLE) uvicorn's keep-alive timer runs,
# in the head and the body our deadline does.
_IDLE, _HEAD, _BODY = range(3)

# Exit statuses of `bridge serve` (the README's shutdown section lists them). 0: stopped by SIGTERM or
# SIGINT with every request answered. 3 is uvicorn's own, for a failed start-up (the port is taken, say).
EXIT_SHUTDOWN_CUT = 1  # the shutdown budget ran out: requests still running were cancelled
EXIT_STARTUP_FAILED = STARTUP_FAILURE
# Only with --workers N > 1: a worker ended itself because its /healthz kept failing (its Kafka producer failed
# for good), so that the supervisor starts a fresh one. `bridge serve` itself never exits with it.
EXIT_WORKER_FAILED = 4
# After the budget, the app's shutdown (the producer flush) has this long before the process exits anyway.
SHUTDOWN_GRACE_SECONDS = 1.0
DRAIN_POLL_SECONDS = 0.05
LISTEN_BACKLOG = 2048  # uvicorn's default
WATCH_TICKS = 10  # uvicorn ticks every 0.1 s: a worker asks its own /healthz once a second...
WATCH_FAILURES = 3  # ...and stops after this many failures in a row, as the Kubernetes liveness probe would


@dataclass(frozen=True)
class Limits:
    """The connection limits of `ServerSettings`, and whom to tell of each cut-off."""

    head_timeout: float
    body_timeout: float
    keep_alive: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    max_concurrent_requests: int
    retry_after: int
    on_refused: Callable[[str], None]

    @classmethod
    def of(cls, settings: ServerSettings, on_refused: Callable[[str], None]) -> Limits:
        return cls(
            settings.head_timeout_seconds,
            settings.body_timeout_seconds,
            settings.keep_alive_seconds,
            settings.max_header_bytes,
            settings.max_headers,
            settings.max_connections,
            settings.max_concurrent_requests,
            settings.retry_after_seconds,
            on_refused,
        )


@dataclass(frozen=True)
class _Refusal:
    reason: str
    status: int
    error: str
    detail: str
    retry_after: bool = False


class _Cut(Exception):
    """Raised in a parser callback to stop the parser at once; the refusal waits in `_cut`."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline per phase of a request and caps on what it may take.

    uvicorn arms no timer before a response is complete and buffers a header whole (quadratic in its
    size), so both are done here. `protocol_class` binds the limits to a subclass per server.
    """

    limits: ClassVar[Limits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # The limits read on every request, as instance attributes: the cheapest lookup there is.
        self._max_header_bytes = self.limits.max_header_bytes
        self._max_headers = self.limits.max_headers
        self._max_requests = self.limits.max_concurrent_requests
        self._phase = _IDLE
        self._requests = 0  # requests begun on this connection
        self._head_bytes = 0  # bytes of the current head fed to the parser so far
        self._framing = 0  # bytes of the current body fed to the parser that were not body
        self._chunks = 0
        self._body_bytes = 0  # body bytes the parser handed out during the current feed
        self._timer: asyncio.TimerHandle | None = None  # the head or body deadline, or the linger
        self._cut: _Refusal | None = None
        self._refused = False

    # Connection life

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                _Refusal(
                    "too_many_connections",
                    503,
                    "unavailable",
                    f"more than {self.limits.max_connections} connections open; retry later",
                    retry_after=True,
                )
            )
            return
        # uvicorn arms its keep-alive timer only after a response; a connection that never sends a request
        # must expire just the same.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        # uvicorn leaves its keep-alive timer armed when the connection died of an error.
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the transport over (with its own timeouts): ours must not fire on it.
        self._cancel_timer()
        self._unset_keepalive_if_required()
        super().handle_websocket_upgrade()

    def timeout_keep_alive_handler(self) -> None:
        if self.transport.is_closing() or self._refused:
            return
        if self._phase != _IDLE or (self.cycle is not None and not self.cycle.response_complete):
            # uvicorn armed it after a response while the next request was already under way (pipelined):
            # that request has its own deadline, or is the app's.
            return
        self._refused = True
        # A connection that never sent a request is someone holding a socket; one whose keep-alive ran out
        # after serving is routine, and logged only at DEBUG.
        level = logging.WARNING if self._requests == 0 else logging.DEBUG
        self._tell("idle", f"no request within {self.limits.keep_alive:g} s", level)
        self.transport.close()

    # Reading

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: what the client still sends is dropped unparsed
        if self._phase != _BODY and len(data) > self._max_header_bytes - self._head_bytes:
            # At most that many more bytes may belong to this head: the parser gets those first, so that
            # neither it nor uvicorn ever holds more than the cap of a head. The rest follows if the head
            # ended within them; _feed refuses the head otherwise.
            room = self._max_header_bytes - self._head_bytes
            view = memoryview(data)
            if not (self._feed(view[:room]) and self._feed(view[room:])):
                return
        elif not self._feed(data):
            return
        if self._timer is None and self._phase != _IDLE:
            self._arm_deadline()

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse `data` and account for it; False once the connection is being closed."""
        requests, phase = self._requests, self._phase
        self._body_bytes = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return False
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._cut is not None:
                self._refuse(self._cut)
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return False
        if self._phase == _HEAD:
            if self._requests == requests:
                self._head_bytes += len(data)  # the same head went on through all of it
            elif phase == _IDLE and self._requests == requests + 1:
                self._head_bytes = len(data)  # a head began with it
            # Otherwise a pipelined head began after another request in this data, at an offset the parser
            # does not tell: it is counted from the next data on (one read, at most 256 KiB, beyond the cap).
            if self._head_bytes >= self._max_header_bytes:
                detail = f"request line and headers over {self._max_header_bytes} bytes"
                self._refuse(_Refusal("header_too_large", 431, "headers_too_large", detail))
                return False
            if len(self.headers) > self._max_headers:
                self._refuse(self._too_many_headers())
                return False
        elif self._phase == _BODY and phase == _BODY and self._requests == requests:
            self._framing += len(data) - self._body_bytes
            if self._framing > self._max_header_bytes + CHUNK_FRAMING_BYTES * self._chunks:
                detail = f"chunk framing and trailers over {self._max_header_bytes} bytes"
                self._refuse(_Refusal("header_too_large", 431, "headers_too_large", detail))
                return False
        return not self.transport.is_closing()

    # Parser callbacks: they run for every request, hence the base calls by name (super() costs more here).

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._requests += 1
        self._phase = _HEAD
        self._head_bytes = 0
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()  # a request is under way: the head deadline takes over

    def on_headers_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # uvicorn collects the header lines in self.headers; the byte cap keeps the list short meanwhile.
        if len(self.headers) > self._max_headers:
            self._cut = self._too_many_headers()
            raise _Cut
        if len(self.tasks) >= self._max_requests:
            detail = f"{self._max_requests} requests in progress; retry later"
            self._cut = _Refusal("too_many_requests", 503, "unavailable", detail, retry_after=True)
            raise _Cut
        self._phase = _BODY
        self._head_bytes = self._framing = self._chunks = 0
        HttpToolsProtocol.on_headers_complete(self)

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        HttpToolsProtocol.on_body(self, body)

    def on_message_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = _IDLE
        HttpToolsProtocol.on_message_complete(self)

    def _too_many_headers(self) -> _Refusal:
        return _Refusal("too_many_headers", 431, "headers_too_large", f"more than {self._max_headers} header lines")

    # Deadlines and refusals

    def _arm_deadline(self) -> None:
        # Armed once the parser is done with the data rather than in its callbacks, so that a request
        # arriving whole (the common case) costs no timer at all. Each phase transition cancels the
        # deadline, so one still unarmed is that of a phase begun within the data just parsed.
        timeout = self.limits.head_timeout if self._phase == _HEAD else self.limits.body_timeout
        self._timer = self.loop.call_later(timeout, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._phase == _HEAD:
            detail = f"request head not complete within {self.limits.head_timeout:g} s"
            self._refuse(_Refusal("head_timeout", 408, "request_timeout", detail))
            return
        # No answer: the app may be reading the body, and sees the client disconnect.
        self._refused = True
        self._tell("body_timeout", f"body not complete within {self.limits.body_timeout:g} s")
        self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer with a JSON error and Connection: close, then close."""
        self._refused = True
        self._cancel_timer()
        self._unset_keepalive_if_required()
        self._tell(refusal.reason, refusal.detail)
        if self.cycle is not None and not self.cycle.response_complete:
            if self.cycle.response_started:
                # Part of an answer is out (the refused request was pipelined behind it): no room for ours.
                self.transport.close()
                return
            # The refused request is the app's (its body went wrong): the app sees the client disconnect, and
            # uvicorn drops whatever it still sends.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        body = json.dumps({"error": refusal.error, "detail": refusal.detail}).encode()
        head = [STATUS_LINE[refusal.status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body)]
        if refusal.retry_after:
            head.append(b"retry-after: %d\r\n" % self.limits.retry_after)
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", body]))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        # Send FIN after the answer and drain until the client closes (or the linger ends), so the close is
        # not a reset that destroys the answer.
        self.transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.abort)

    def _tell(self, reason: str, detail: str, level: int = logging.WARNING) -> None:
        self.limits.on_refused(reason)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        log.log(level, "%s cut off (%s): %s", client, reason, detail)


def protocol_class(limits: Limits) -> type[LimitedHttpToolsProtocol]:
    """A protocol class of its own per server, so the limits and the callback are bound without globals."""

    class BoundProtocol(LimitedHttpToolsProtocol):
        pass

    BoundProtocol.limits = limits
    return BoundProtocol


@dataclass(frozen=True)
class Management:
    """A second listener for the probes and metrics (server.management_port): its own connections, limits
    counted apart from the public port's, so a flood there cannot starve the kubelet's probes, and open
    until the process ends, so /readyz says 503 (and /healthz 200) all through a drain. A worker among several
    (`shared_port`) closes it when its drain begins instead: its siblings answer."""

    app: ASGIApp
    host: str
    port: int
    shared_port: bool = False  # SO_REUSEPORT: every worker of `--workers N` listens on it


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with one shutdown budget, counted from the signal, and an exit status that says
    whether the drain finished.

    On SIGTERM (or SIGINT) `on_shutdown` is called at once, in the signal handler, so /readyz answers
    503 from then on. Then the listener closes, idle keep-alive connections are closed, requests in
    progress finish and their connections close after the answer, and the app's lifespan shutdown (which
    flushes the producer) runs. Requests still running `budget` seconds after the signal are cancelled;
    if the lifespan shutdown has not finished `SHUTDOWN_GRACE_SECONDS` later, the process exits there.
    """

    def __init__(
        self,
        config: Config,
        budget: float,
        on_shutdown: Callable[[], None],
        on_started: Callable[[], None] | None = None,
        watch: Callable[[], Awaitable[str | None]] | None = None,
        management: Management | None = None,
    ) -> None:
        super().__init__(config)
        self.budget = budget
        self._management = management
        self._management_server: asyncio.Server | None = None
        self._management_state = ServerState()
        self._on_shutdown = on_shutdown
        self._on_started = on_started
        self._watch = watch
        self._unhealthy = 0  # consecutive failed watches
        self.signalled_at: float | None = None
        self.drained = True  # False once requests had to be cancelled
        self.failed: str | None = None  # why the watch stopped this server, if it did

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        management = self._management
        listener = None
        if management is not None:
            try:  # bound before the app starts, so that a taken port fails start-up as the public one does
                listener = listen(*resolve(management.host, management.port), management.shared_port)
            except OSError as error:
                log.error("cannot listen on %s:%d (management_port): %s", management.host, management.port, error)
                self.should_exit = True
                return
        try:
            await super().startup(sockets)
        except BaseException:  # uvicorn exits (SystemExit) when its own bind or the lifespan fails
            if listener is not None:
                listener.close()
            raise
        if listener is not None and management is not None:
            if not self.started:
                listener.close()
                return
            config = Config(
                management.app,
                lifespan="off",  # the app's lifespan is the public listener's
                http=self.config.http,
                timeout_keep_alive=self.config.timeout_keep_alive,
                log_config=None,
                proxy_headers=False,
                access_log=self.config.access_log,
            )
            config.load()
            protocol_class = cast("type[HttpToolsProtocol]", config.http_protocol_class)  # ours, from `http`
            protocol = functools.partial(
                protocol_class, config=config, server_state=self._management_state, app_state={}
            )
            self._management_server = await asyncio.get_running_loop().create_server(
                protocol, sock=listener, backlog=config.backlog
            )
            log.info("probes and metrics on http://%s:%d", management.host, management.port)
        if self.started and self._on_started is not None:
            self._on_started()  # serving from here on: a worker tells its supervisor

    async def on_tick(self, counter: int) -> bool:
        # uvicorn calls this every 0.1 s; the watch (a worker's own liveness) runs once a second.
        if self._watch is not None and counter % WATCH_TICKS == 0 and not self.should_exit:
            reason = await self._watch()
            self._unhealthy = self._unhealthy + 1 if reason is not None else 0
            if reason is not None and self._unhealthy >= WATCH_FAILURES:
                self.failed = reason
                log.error("stopping this worker (pid %d), for a fresh one: %s", os.getpid(), reason)
                self.handle_exit(signal.SIGTERM, None)
        should_exit = await super().on_tick(counter)
        self._management_state.default_headers = self.server_state.default_headers  # Date, refreshed by uvicorn
        return should_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            self._on_shutdown()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """As uvicorn's, without raising the signal again at the end. uvicorn does, so that the process dies
        of it (status 143 for SIGTERM) however the drain went; here the exit status tells."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            while early_signals:  # a worker signalled while it was still building its app
                self.handle_exit(early_signals.pop(0), None)
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        began = self.signalled_at if self.signalled_at is not None else time.monotonic()
        deadline = began + self.budget
        watchdog = threading.Timer(max(0.0, deadline + SHUTDOWN_GRACE_SECONDS - time.monotonic()), _overdue)
        watchdog.daemon = True
        watchdog.start()
        state = self.server_state
        if self._management is not None and self._management.shared_port:
            # One worker of several: its siblings answer the probes and scrapes from now on, rather than this
            # one's 503 (the kernel only stops routing connections to a closed socket).
            self._close_management()
        log.info("shutting down: listener closed, draining %d request(s) within %g s", len(state.tasks), self.budget)
        for server in self.servers:
            server.close()  # new connections are refused from here on
        for sock in sockets or []:
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their answer
        while (state.connections or state.tasks) and not self.force_exit and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        if state.tasks:
            self.drained = False
            log.error("shutdown budget of %g s spent: cutting %d request(s) off", self.budget, len(state.tasks))
            for connection in list(state.connections):
                if isinstance(connection, HttpToolsProtocol) and connection.cycle is not None:
                    # The request sees its client go (one still reading its body ends there), and is answered
                    # nothing rather than uvicorn's 500: the provider retries either way.
                    connection.cycle.disconnected = True
                    connection.cycle.message_event.set()
                connection.transport.close()
            await asyncio.sleep(DRAIN_POLL_SECONDS)
            for task in state.tasks:  # still waiting for Kafka, say
                task.cancel(msg="shutdown budget spent")
        if not self.force_exit:
            await self.lifespan.shutdown()  # the app's own: the producer flushes what is still in flight
        self._close_management()  # last: the probes saw the drain through
        watchdog.cancel()
        log.info("shut down %.1f s after the signal", time.monotonic() - began)

    def _close_management(self) -> None:
        if self._management_server is not None:
            self._management_server.close()
            self._management_server = None
            for connection in list(self._management_state.connections):
                connection.transport.close()


def _overdue() -> None:
    log.critical("shutdown not finished %g s after its budget: exiting now", SHUTDOWN_GRACE_SECONDS)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(EXIT_SHUTDOWN_CUT)


def new_socket(family: socket.AddressFamily) -> socket.socket:
    """A TCP socket to listen on, as asyncio's create_server makes one: SO_REUSEADDR, IPv6 only."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    except OSError:
        sock.close()
        raise
    return sock


def resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return family, address


def listen(family: socket.AddressFamily, address: tuple[Any, ...], shared: bool) -> socket.socket:
    """A listening socket on `address`; `shared`: SO_REUSEPORT, an accept queue of its own among several (each
    worker of `--workers N`), the kernel spreading new connections over them by address hash."""
    sock = new_socket(family)
    try:
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _tell_app(app: ASGIApp) -> Callable[[], None]:
    """What to call the moment a shutdown begins: an app with a `shutting_down` flag (BridgeApp) gets it set."""

    def tell() -> None:
        if hasattr(app, "shutting_down"):
            app.shutting_down = True

    return tell


def serve(
    app: ASGIApp,
    settings: ServerSettings,
    host: str,
    port: int,
    log_level: str,
    on_refused: Callable[[str], None] = lambda reason: None,
    on_shutdown: Callable[[], None] | None = None,
    *,
    sockets: list[socket.socket] | None = None,
    on_started: Callable[[], None] | None = None,
    watch: Callable[[], Awaitable[str | None]] | None = None,
    management: Management | None = None,
) -> None:
    """Serve `app` until SIGINT/SIGTERM, then drain within `settings.shutdown_timeout_seconds`.

    `on_refused(reason)` is told of every connection or request the server's limits cut off;
    `on_shutdown()` the moment the signal arrives (by default, an app's `shutting_down` flag is set).
    A worker of `supervise` passes its listening socket in `sockets` (host and port are then only for
    uvicorn's config), `on_started` to tell the supervisor it serves, and a `watch` (see `liveness`) that
    stops the server as if signalled once it returns a reason three times in a row. `management` is a second
    listener, for the probes and metrics.
    Returns once every request was answered; raises SystemExit(EXIT_SHUTDOWN_CUT) when the budget ran
    out, SystemExit(EXIT_STARTUP_FAILED) when start-up failed, SystemExit(EXIT_WORKER_FAILED) when the
    watch stopped it.
    """
    config = Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol_class(Limits.of(settings, on_refused)),
        # uvicorn hands it straight to loop.call_later, which takes fractional seconds.
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        log_level=log_level,
        log_config=logs.UVICORN_LOG_CONFIG,  # uvicorn's lines go through the bridge's own handler and format
        proxy_headers=False,
        access_log=settings.access_log,
    )
    server = DrainingServer(
        config,
        settings.shutdown_timeout_seconds,
        on_shutdown or _tell_app(app),
        on_started=on_started,
        watch=watch,
        management=management,
    )
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        server.run(sockets=sockets)
    if not server.started:
        raise SystemExit(EXIT_STARTUP_FAILED)
    if server.failed is not None:
        raise SystemExit(EXIT_WORKER_FAILED)
    if not server.drained:
        raise SystemExit(EXIT_SHUTDOWN_CUT)


early_signals: list[int] = []
"""SIGTERM/SIGINT received by a worker before its server installed its handlers; that server replays them."""


def remember_signal(sig: int, frame: FrameType | None) -> None:
    early_signals.append(sig)
