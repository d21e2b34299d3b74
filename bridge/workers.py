"""`bridge serve --workers N`: a supervisor that forks N servers (bridge/server.py), each with its own app.

Linux only: fork, SO_REUSEPORT's balancing, sigtimedwait, prctl. The README's "Several workers" says why
it is built this way (one socket per worker, restarts with backoff, a worker's own liveness watch).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from starlette.types import ASGIApp, Message
from uvicorn.server import HANDLED_SIGNALS

from bridge import server
from bridge.server import EXIT_SHUTDOWN_CUT, EXIT_STARTUP_FAILED, EXIT_WORKER_FAILED, SHUTDOWN_GRACE_SECONDS
from bridge.settings import ServerSettings

log = logging.getLogger("bridge.workers")

# `--workers N`: how the supervisor restarts and stops its workers (the README's "Several workers" says why).
RESTART_MIN_SECONDS = 1.0  # a slot is restarted at most once a second...
RESTART_MAX_SECONDS = 30.0  # ...backing off, doubling, to this while its replacements keep dying young
RESTART_RESET_SECONDS = 30.0  # a worker that lived this long is replaced after the minimum again
STOP_MARGIN_SECONDS = 1.0  # after a worker's own budget and grace, before the supervisor kills it
STARTING_POLL_SECONDS = 0.2  # how soon the supervisor hears that a starting worker serves


def liveness(app: ASGIApp, path: str = "/healthz") -> Callable[[], Awaitable[str | None]]:
    """`app`'s own liveness answer, asked in process (no socket): None while 2xx, else what it said.

    A worker's `watch`: /healthz fails only when the Kafka producer failed for good, and one process among
    several cannot rely on an orchestrator's probe, which reaches whichever worker the kernel picks.
    """
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": None,
        "server": None,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def check() -> str | None:
        status, body = 0, bytearray()

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await app(dict(scope, state={}), receive, send)
        except Exception as error:  # noqa: BLE001 — as a probe would: an error is a failed answer, not a crash
            return f"{path} raised {type(error).__name__}"
        if 200 <= status < 300:
            return None
        return f"{path} answered {status} {bytes(body[:200]).decode('utf-8', 'replace')}"

    return check


# --- Several worker processes -----------------------------------------------------------------------------

WorkerMain = Callable[[socket.socket, Callable[[], None]], None]
"""What a worker runs after the fork: build the app (its Kafka producer and registry client are its own),
then `serve(..., sockets=[listener], on_started=started)`; its SystemExit status is the worker's."""

_PARENT_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGCHLD})
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_READY = struct.Struct("=i")  # a worker's pid, written to the supervisor's pipe once it serves


@dataclass
class _Slot:
    """One of the N worker places: the process in it now, and its restart backoff."""

    index: int
    pid: int | None = None
    started_at: float = 0.0
    serving: bool = False  # told the supervisor it serves
    delay: float = 0.0  # the last restart delay (0: none yet)
    due: float | None = None  # when to start its next worker


def supervise(work: WorkerMain, settings: ServerSettings, host: str, port: int, workers: int) -> None:
    """Run `workers` forked processes of `work`, each accepting on its own SO_REUSEPORT socket, until
    SIGTERM/SIGINT; restart any that dies meanwhile. POSIX `fork`, and Linux for the rest (SO_REUSEPORT's
    balancing, `sigtimedwait`, `prctl`).

    The parent stays small: no app, no Kafka producer, no registry client, no event loop, and no thread, so
    the fork copies nothing that librdkafka's threads would have held. It checks that the port is free
    (start-up fails with EXIT_STARTUP_FAILED otherwise, before any fork), then per worker opens a listening
    socket, forks, and closes its own copy: the worker holds the only one, so the kernel stops routing
    connections to it the moment it dies. Until every worker has said it serves, a worker's exit is a failed
    start-up: the others are stopped and EXIT_STARTUP_FAILED raised. After that a worker that exits, of
    whatever cause, is logged and replaced, after 1 s and up to 30 s while replacements die young.
    On SIGTERM or SIGINT every worker is sent SIGTERM and drains within `settings.shutdown_timeout_seconds`;
    one still running a second after its own grace is killed. Returns when every worker exited 0, raises
    SystemExit(EXIT_SHUTDOWN_CUT) when any did not.
    """
    if threading.active_count() > 1:
        # A thread (librdkafka's, say) would be copied into every worker as a lock held forever.
        log.warning("forking workers while %d threads run: their locks are copied held", threading.active_count())
    address = _address(host, port)
    ports = [(host, port, address)]
    if settings.management_port is not None:  # every worker listens on it too (SO_REUSEPORT)
        management_host = settings.management_host or host
        ports.append((management_host, settings.management_port, _address(management_host, settings.management_port)))
    for where, number, (family, bound) in ports:
        try:
            # A plain bind, without SO_REUSEPORT, fails when anything listens on the port, even another bridge's
            # SO_REUSEPORT sockets: the workers' own binds would succeed and share the port with it.
            with server.new_socket(family) as probe:
                probe.bind(bound)
        except OSError as error:
            log.error("cannot listen on %s:%d: %s", where, number, error)
            raise SystemExit(EXIT_STARTUP_FAILED) from None
    stop_after = settings.shutdown_timeout_seconds + SHUTDOWN_GRACE_SECONDS + STOP_MARGIN_SECONDS
    log.info(
        "serving on %s:%d with %d workers, a listening socket each (SO_REUSEPORT); supervisor pid %d",
        host,
        port,
        workers,
        os.getpid(),
    )
    # What is imported by now is shared with every worker, copy-on-write; frozen, the workers' collector
    # never walks (and so never writes to, and copies) those pages.
    gc.freeze()
    status = _Supervisor(work, address, workers, stop_after).run()
    if status:
        raise SystemExit(status)


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    try:
        return server.resolve(host, port)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", host, port, error)
        raise SystemExit(EXIT_STARTUP_FAILED) from None


class _Supervisor:
    """The parent of `supervise`: starts, reaps, restarts and stops the workers, on signals alone.

    SIGINT, SIGTERM and SIGCHLD are blocked and taken with sigtimedwait, so no handler ever runs between two
    steps of the bookkeeping, and a signal arriving during a fork waits instead of running in the child.
    """

    def __init__(
        self, work: WorkerMain, address: tuple[socket.AddressFamily, tuple[Any, ...]], workers: int, stop_after: float
    ) -> None:
        self._work = work
        self._family, self._address = address
        self._slots = [_Slot(index) for index in range(1, workers + 1)]
        self._stop_after = stop_after
        self._pid = os.getpid()
        self._mask: set[int | signal.Signals] = set()  # the signal mask before ours, for the workers
        self._ready_r, self._ready_w = os.pipe()
        os.set_blocking(self._ready_r, False)
        self._up = False  # every worker has served once: from here on, exits are restarted
        self._stopping: int | None = None  # the signal that stops us
        self._deadline = math.inf  # when the workers still running are killed
        self._status = 0

    def run(self) -> int:
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
        try:
            for slot in self._slots:
                self._start(slot)
            while self._stopping is None or any(slot.pid is not None for slot in self._slots):
                info = signal.sigtimedwait(_PARENT_SIGNALS, self._timeout())
                self._read_ready()
                if info is not None and info.si_signo != signal.SIGCHLD:
                    self._stop(info.si_signo)
                self._reap()
                now = time.monotonic()
                if self._stopping is None:
                    for slot in self._slots:
                        if slot.pid is None and slot.due is not None and slot.due <= now:
                            self._start(slot)
                elif now >= self._deadline:
                    self._kill_the_rest()
            log.info("every worker stopped (exit status %d)", self._status)
            return self._status
        finally:
            for slot in self._slots:  # only after a bug here: the workers drain (they would, on PDEATHSIG)
                if slot.pid is not None:
                    with contextlib.suppress(OSError):
                        os.kill(slot.pid, signal.SIGTERM)
            os.close(self._ready_r)
            os.close(self._ready_w)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    def _timeout(self) -> float:
        now = time.monotonic()
        if self._stopping is not None:
            wake = self._deadline
        else:
            wake = min(
                (slot.due for slot in self._slots if slot.pid is None and slot.due is not None), default=math.inf
            )
        if any(slot.pid is not None and not slot.serving for slot in self._slots):
            wake = min(wake, now + STARTING_POLL_SECONDS)  # the pipe wakes no one: it is read on each turn
        return max(0.01, min(wake - now, 60.0))

    def _start(self, slot: _Slot) -> None:
        slot.due = None
        if self._stopping is not None:  # an earlier worker's start failed
            return
        try:
            # Each worker its own accept queue: the kernel spreads connections over them by address hash. With
            # one shared socket, whichever worker woke first took a whole burst of keep-alive connections.
            listener = server.listen(self._family, self._address, shared=True)
        except OSError as error:
            self._failed_to_start(slot, error)
            return
        try:
            pid = os.fork()
        except OSError as error:
            listener.close()
            self._failed_to_start(slot, error)
            return
        if pid == 0:
            self._child(slot, listener)
        listener.close()  # the worker holds the only copy
        slot.pid, slot.started_at, slot.serving = pid, time.monotonic(), False
        log.info("worker %d starting: pid %d", slot.index, pid)

    def _failed_to_start(self, slot: _Slot, error: OSError) -> None:
        if not self._up:
            log.error("worker %d: cannot listen or fork: %s", slot.index, error)
            self._status = EXIT_STARTUP_FAILED
            self._stop(signal.SIGTERM)
            return
        self._schedule(slot, 0.0, f"worker {slot.index}: cannot listen or fork: {error}")

    def _child(self, slot: _Slot, listener: socket.socket) -> NoReturn:
        """The worker's side of the fork: never returns, exits with the status of `work`."""
        code = 1
        try:
            for sig in HANDLED_SIGNALS:  # until uvicorn's own handlers are in: remembered, then replayed
                signal.signal(sig, server.remember_signal)
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            _die_with(self._pid)
            os.close(self._ready_r)
            ready_w = self._ready_w

            def started() -> None:
                os.write(ready_w, _READY.pack(os.getpid()))

            self._work(listener, started)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:
            log.exception("worker %d (pid %d) failed", slot.index, os.getpid())
        finally:
            logging.shutdown()  # flush every handler: os._exit does not
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)  # never the parent's cleanup (atexit, its finally blocks) in a worker

    def _read_ready(self) -> None:
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self._ready_r, 4096):  # whole messages: each is one write of 4 bytes
                data += chunk
        for (pid,) in _READY.iter_unpack(data[: len(data) - len(data) % _READY.size]):
            for slot in self._slots:
                if slot.pid == pid and not slot.serving:
                    slot.serving = True
                    log.info("worker %d serving: pid %d", slot.index, pid)
        if not self._up and all(slot.serving for slot in self._slots):
            self._up = True
            log.info("all %d workers serving", len(self._slots))

    def _reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((slot for slot in self._slots if slot.pid == pid), None)
            if slot is not None:  # else an orphan re-parented to us (PID 1 in a container): reaped, that's all
                self._exited(slot, os.waitstatus_to_exitcode(wait_status))

    def _exited(self, slot: _Slot, code: int) -> None:
        pid, slot.pid = slot.pid, None
        how = _how(code)
        if self._stopping is not None:
            if code == 0:
                log.info("worker %d (pid %d) drained and exited", slot.index, pid)
            else:
                log.error("worker %d (pid %d) %s while stopping", slot.index, pid, how)
                self._status = self._status or EXIT_SHUTDOWN_CUT
            return
        if not self._up:
            log.error("worker %d (pid %d) %s before every worker was serving: start-up failed", slot.index, pid, how)
            self._status = EXIT_STARTUP_FAILED
            self._stop(signal.SIGTERM)
            return
        # Status 0 is a worker that drained on a SIGTERM of its own (an operator recycling it): not a failure.
        level = logging.WARNING if code == 0 else logging.ERROR
        self._schedule(slot, time.monotonic() - slot.started_at, f"worker {slot.index} (pid {pid}) {how}", level)

    def _schedule(self, slot: _Slot, lived: float, what: str, level: int = logging.ERROR) -> None:
        if lived >= RESTART_RESET_SECONDS or slot.delay == 0:
            slot.delay = RESTART_MIN_SECONDS
        else:
            slot.delay = min(slot.delay * 2, RESTART_MAX_SECONDS)
        slot.due = time.monotonic() + slot.delay
        log.log(level, "%s after %.1f s; starting another in %g s", what, lived, slot.delay)

    def _stop(self, sig: int) -> None:
        live = [slot.pid for slot in self._slots if slot.pid is not None]
        if self._stopping is not None:
            if sig == signal.SIGINT:  # a second Ctrl-C: as with one process, the workers stop without draining
                self._signal(live, signal.SIGINT)
            return
        self._stopping = sig
        self._deadline = time.monotonic() + self._stop_after
        log.info("%s: stopping %d worker(s)", signal.Signals(sig).name, len(live))
        self._signal(live, signal.SIGTERM)  # not SIGINT: a worker that had one from the terminal would force-quit

    def _signal(self, pids: list[int], sig: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # exited, not reaped yet
                os.kill(pid, sig)

    def _kill_the_rest(self) -> None:
        for slot in self._slots:
            if slot.pid is not None:
                what = f"worker {slot.index} (pid {slot.pid})"
                log.error("%s still running %g s after the signal: killed", what, self._stop_after)
                self._signal([slot.pid], signal.SIGKILL)
        self._status = self._status or EXIT_SHUTDOWN_CUT
        self._deadline = math.inf


def _how(code: int) -> str:
    """A worker's end, from os.waitstatus_to_exitcode, in words."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    known = {
        0: "exited with status 0 unasked (a SIGTERM sent to it alone?)",
        EXIT_SHUTDOWN_CUT: "exited with status 1",
        EXIT_STARTUP_FAILED: "exited with status 3 (its start-up failed)",
        EXIT_WORKER_FAILED: "exited with status 4 (its /healthz failed: the Kafka producer failed for good)",
    }
    return known.get(code, f"exited with status {code}")


def _die_with(parent: int) -> None:
    """Linux: SIGTERM to this worker when its supervisor dies (kill -9, say), so no worker is left behind."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
