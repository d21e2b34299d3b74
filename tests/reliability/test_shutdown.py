"""Graceful shutdown on SIGTERM: not ready at once, listener closed, requests in progress answered, the
producer flushed, exit within server.shutdown_timeout_seconds; exit status 0 when every request was
answered, 1 when the budget ran out and requests were cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from starlette.testclient import TestClient

from bridge import config
from bridge.app import create_app
from bridge.providers.lettermint import LettermintSender, signature_headers
from bridge.server import EXIT_SHUTDOWN_CUT, DrainingServer, _tell_app
from tests.support.http import read_response, request
from tests.support.reliability import Row, record
from tests.support.stack import Stack, read_topic, start_bridge

pytestmark = pytest.mark.reliability

SECRET = "whsec_shutdown"
SOURCE = "shutdown"
SOURCES = f'- {{name: {SOURCE}, provider: lettermint, secrets: ["{SECRET}"]}}'
EVENT_TYPE = "message.delivered"
SENDER = LettermintSender()
BUDGET = 5  # server.shutdown_timeout_seconds
SLACK = 2.0  # "plus a little": the grace for the producer flush, and process teardown
CLIENTS = 16
MAX_PER_CLIENT = 300  # the load is bounded in count...
MAX_SECONDS = 20  # ...and in time, whatever happens
LOAD_BEFORE_SIGTERM = 1.5  # seconds of load before the signal
CLIENT_TIMEOUT = BUDGET + 10  # a request with no answer by then hung: the test fails on it
SLOW_BODY_DELAY = 1.0  # the in-flight request sends the rest of its body this long after SIGTERM


@contextlib.contextmanager
def bridge_process(stack: Stack, folder: Path, budget: float) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """start_bridge with shutdown_timeout_seconds `budget`, and the Popen it started (to signal it, read its exit
    status)."""
    started: list[subprocess.Popen[bytes]] = []

    class Recording(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    with contextlib.ExitStack() as stack_:
        with mock.patch.object(subprocess, "Popen", Recording):
            url, prefix, _ = stack_.enter_context(
                start_bridge(stack, folder, SOURCES, {}, shutdown_timeout_seconds=budget)
            )
        yield url, prefix, started[0]


def signed() -> tuple[bytes, dict[str, str], str]:
    body = SENDER.example(EVENT_TYPE, datetime.now(UTC))
    return body, signature_headers(body, SECRET, time.time()), json.loads(body)["id"]


@dataclass(frozen=True)
class Attempt:
    event_id: str
    started: float
    ended: float
    status: str  # "200", "503", ..., or "refused" (connect failed), "reset" (closed unanswered), "timeout"

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")


@dataclass
class Load:
    """CLIENTS clients posting signed deliveries back to back, each until its connection is refused."""

    url: str
    attempts: list[Attempt] = field(default_factory=list)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT) as client:
            deadline = time.monotonic() + MAX_SECONDS
            await asyncio.gather(*(self._client(client, deadline) for _ in range(CLIENTS)))

    async def _client(self, client: httpx.AsyncClient, deadline: float) -> None:
        for _ in range(MAX_PER_CLIENT):
            if time.monotonic() > deadline:
                return
            attempt = await self._post(client)
            self.attempts.append(attempt)
            if attempt.status == "refused":
                return

    async def _post(self, client: httpx.AsyncClient) -> Attempt:
        body, headers, event_id = signed()
        started = time.monotonic()
        try:
            response = await client.post(f"{self.url}/webhooks/{SOURCE}", content=body, headers=headers)
        except httpx.TimeoutException:
            status = "timeout"
        except httpx.ConnectError:
            status = "refused"
        except httpx.TransportError:  # the server closed a kept-alive connection as the request went out
            status = "reset"
        else:
            status = str(response.status_code)
            if response.is_success:
                assert event_id in response.json()["events"], response.text
        return Attempt(event_id, started, time.monotonic(), status)


async def open_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[asyncio.StreamReader, Any, bytes]:
    """A POST whose head and first half of body are sent; the caller sends the rest (or never does)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    raw = request("POST", f"/webhooks/{SOURCE}", headers, body)
    half = len(raw) - len(body) // 2
    writer.write(raw[:half])
    await writer.drain()
    return reader, writer, raw[half:]


async def answer_or_close(reader: asyncio.StreamReader, timeout: float) -> tuple[int | None, dict[str, str], bytes]:
    """The response's status, headers and body, or (None, {}, b"") when the server closed without one."""
    try:
        response = await asyncio.wait_for(read_response(reader), timeout)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, {}, b""
    return response.status, response.headers, response.body


def kafka_counts(stack: Stack, topic: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in read_topic(stack.bootstrap_servers, topic):
        event_id = dict(message.headers() or []).get("event_id")
        if isinstance(event_id, bytes):
            counts[event_id.decode()] += 1
    return counts


def test_sigterm_under_load_answers_every_request_in_progress_and_exits_0(stack: Stack, tmp_path: Path) -> None:
    with bridge_process(stack, tmp_path, BUDGET) as (url, prefix, process):

        async def scenario() -> dict[str, Any]:
            load = Load(url)
            running = asyncio.create_task(load.run())
            # A kept-alive connection for readiness, and a request in progress across the signal.
            host, port = url.removeprefix("http://").split(":")
            probe_reader, probe_writer = await asyncio.open_connection(host, int(port))
            probe_writer.write(request("GET", "/readyz"))
            assert (await read_response(probe_reader)).status == 200
            slow_body, slow_headers, slow_id = signed()
            slow_reader, slow_writer, rest = await open_request(url, slow_body, slow_headers)
            await asyncio.sleep(LOAD_BEFORE_SIGTERM)
            assert not running.done(), "the load ended before the signal"

            os.kill(process.pid, signal.SIGTERM)
            signalled = time.monotonic()
            probe_writer.write(request("GET", "/readyz"))
            probe = await answer_or_close(probe_reader, CLIENT_TIMEOUT)
            await asyncio.sleep(0.5)
            with pytest.raises(ConnectionRefusedError):  # the listener is closed by now
                await asyncio.open_connection(host, int(port))
            await asyncio.sleep(SLOW_BODY_DELAY - 0.5)
            slow_writer.write(rest)  # the request in progress completes, a second after the signal
            slow_sent = time.monotonic()
            slow = await answer_or_close(slow_reader, CLIENT_TIMEOUT)
            slow_closed = await asyncio.wait_for(slow_reader.read(), CLIENT_TIMEOUT)  # then the server closes
            exit_code = await asyncio.to_thread(process.wait, BUDGET + SLACK + 10)
            exited = time.monotonic() - signalled
            await asyncio.wait_for(running, MAX_SECONDS + CLIENT_TIMEOUT)
            for writer in (probe_writer, slow_writer):
                writer.close()
            slow_status = str(slow[0]) if slow[0] is not None else "reset"
            attempts = [*load.attempts, Attempt(slow_id, slow_sent, time.monotonic(), slow_status)]
            return {
                "attempts": attempts,
                "signalled": signalled,
                "probe": probe,
                "slow": slow,
                "slow_closed": slow_closed,
                "exit_code": exit_code,
                "exited": exited,
            }

        outcome = asyncio.run(scenario())

    attempts: list[Attempt] = outcome["attempts"]
    statuses = Counter(attempt.status for attempt in attempts)
    print(f"answers: {dict(statuses)}; exit {outcome['exit_code']} after {outcome['exited']:.2f} s")
    probe_status, _, probe_body = outcome["probe"]
    print(f"/readyz on a kept-alive connection right after SIGTERM: {probe_status} {probe_body!r}")
    counts = kafka_counts(stack, f"{prefix}.{EVENT_TYPE}")
    ok_ids = {attempt.event_id for attempt in attempts if attempt.ok}
    lost = sorted(event_id for event_id in ok_ids if counts[event_id] == 0)
    sent_ids = {attempt.event_id for attempt in attempts}
    row = record(
        Row(
            scenario=f"SIGTERM under load, {CLIENTS} clients (recovery: time to exit 0)",
            sent=len(attempts),
            ok=len([attempt for attempt in attempts if attempt.ok]),
            refused=Counter(attempt.status for attempt in attempts if not attempt.ok),
            found=len(ok_ids) - len(lost),
            lost=len(lost),
            duplicates=sum(counts[event_id] - 1 for event_id in sent_ids if counts[event_id] > 1),
            recovery_seconds=outcome["exited"],
        )
    )
    print(row.cells(), f"never-2xx'd ids found in Kafka: {sum(counts[i] > 0 for i in sent_ids - ok_ids)}")

    assert not lost, f"{len(lost)} event ids answered 2xx are not in Kafka, e.g. {lost[:5]}"
    assert statuses["timeout"] == 0, "requests hung: neither answered nor refused"
    assert set(statuses) <= {"200", "refused", "reset"}, statuses
    assert row.ok > 0 and statuses["refused"] > 0
    # Readiness: never ready once signalled. The kept-alive connection is either answered 503
    # (the signal handler set the flag) or already closed by the drain, which starts within 0.1 s.
    assert probe_status in (503, None), outcome["probe"]
    if probe_status == 503:
        assert json.loads(probe_body) == {"ready": False, "shutting_down": True}
    # The request in progress at the signal was answered, with Connection: close, and then closed.
    slow_status, slow_headers, slow_answer = outcome["slow"]
    assert slow_status == 200, outcome["slow"]
    assert slow_headers.get("connection") == "close"
    assert json.loads(slow_answer)["events"] == [attempts[-1].event_id]
    assert outcome["slow_closed"] == b""
    # Answers after the signal: only to requests that were in progress; then refusals.
    assert any(attempt.ok and attempt.ended > outcome["signalled"] for attempt in attempts)
    assert outcome["exit_code"] == 0
    assert SLOW_BODY_DELAY < outcome["exited"] < BUDGET + SLACK


def test_a_request_outlasting_the_budget_is_cut_and_the_exit_status_says_so(stack: Stack, tmp_path: Path) -> None:
    budget = 2
    with bridge_process(stack, tmp_path, budget) as (url, _, process):

        async def scenario() -> tuple[tuple[int | None, dict[str, str], bytes], int, float]:
            body, headers, _ = signed()
            reader, writer, _ = await open_request(url, body, headers)  # the rest of the body never comes
            await asyncio.sleep(0.2)
            os.kill(process.pid, signal.SIGTERM)
            signalled = time.monotonic()
            answer = await answer_or_close(reader, budget + SLACK + 10)
            exit_code = await asyncio.to_thread(process.wait, budget + SLACK + 10)
            writer.close()
            return answer, exit_code, time.monotonic() - signalled

        answer, exit_code, exited = asyncio.run(scenario())
    print(f"cut request: {answer}; exit {exit_code} after {exited:.2f} s")
    record(
        Row(
            scenario="SIGTERM, a request outlasting the budget (recovery: time to exit 1)",
            sent=1,
            ok=0,
            refused=Counter({"reset" if answer[0] is None else str(answer[0]): 1}),
            recovery_seconds=exited,
        )
    )
    assert answer == (None, {}, b""), "a request cut by the budget is closed unanswered, not answered 500"
    assert exit_code == EXIT_SHUTDOWN_CUT
    assert budget <= exited < budget + SLACK


def test_the_signal_handler_turns_readiness_off_at_once(stack: Stack, tmp_path: Path) -> None:
    """In process, deterministic: the moment the handler runs (before any drain), /readyz says 503."""
    settings = config.parse(
        f"""
kafka: {{bootstrap_servers: "{stack.bootstrap_servers}"}}
schema_registry: {{url: "{stack.registry_url}"}}
topics: {{prefix: "sd-{os.getpid()}-{time.monotonic_ns()}"}}
sources:
{SOURCES}
"""
    )
    app = create_app(settings)
    server = DrainingServer(mock.Mock(), BUDGET, _tell_app(app))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.5)
        server.handle_exit(signal.SIGTERM, None)
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"ready": False, "shutting_down": True})
        assert client.get("/healthz").status_code == 200  # liveness holds while draining
        assert server.should_exit and server.signalled_at is not None
