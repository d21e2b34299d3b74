"""Connection hygiene against a real `bridge serve`: slow, silent and greedy clients are cut off, each
cut-off is counted and logged once, and a normal client is served all the while. No Kafka needed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from tests.support.http import Process, close, parse_refused, read_response, request, serve_without_kafka, until_closed

pytestmark = pytest.mark.integration

HEAD_TIMEOUT = BODY_TIMEOUT = KEEP_ALIVE = 1.0
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
MAX_CONNECTIONS = 20
MAX_REQUESTS = 5
RETRY_AFTER = 7
# How much later than its deadline a cut-off may come, on a loaded 2-core machine.
SLACK = 2.0
WEBHOOK = "/webhooks/lm"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with serve_without_kafka(
        tmp_path_factory.mktemp("connections"),
        '  - {name: lm, provider: lettermint, secrets: ["whsec_x"]}',
        head_timeout_seconds=HEAD_TIMEOUT,
        body_timeout_seconds=BODY_TIMEOUT,
        keep_alive_seconds=KEEP_ALIVE,
        max_header_bytes=MAX_HEADER_BYTES,
        max_headers=MAX_HEADERS,
        max_connections=MAX_CONNECTIONS,
        max_concurrent_requests=MAX_REQUESTS,
        retry_after_seconds=RETRY_AFTER,
    ) as process:
        yield process


def refused(server: Process) -> dict[str, float]:
    return parse_refused(httpx.get(f"{server.url}/metrics", timeout=5).text)


@contextlib.contextmanager
def counts(server: Process, reason: str, expected: int) -> Iterator[None]:
    """The block adds exactly `expected` to bridge_connections_refused_total{reason=...}."""
    before = refused(server).get(reason, 0.0)
    yield
    # A cut-off is counted on the server's loop, which may not have got to it when the client is done.
    deadline = time.monotonic() + 2
    while (added := refused(server).get(reason, 0.0) - before) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert added == expected, f"{reason}: {added} counted, {expected} expected"


def run(scenario: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout))


async def connect(server: Process) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port)


async def drip(writer: asyncio.StreamWriter, data: bytes, interval: float) -> None:
    """`data` a byte at a time, until it is all sent or the server has closed."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)


def assert_json_error(received: bytes, status: int, error: str) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), received[:200]
    assert b"\r\nconnection: close" in head.lower()
    assert json.loads(body)["error"] == error


def test_a_silent_connection_is_closed_after_the_idle_timeout(server: Process) -> None:
    async def scenario() -> None:
        reader, writer = await connect(server)
        try:
            received, seconds = await until_closed(reader, KEEP_ALIVE + SLACK)
        finally:
            await close(writer)
        assert received == b""
        assert seconds >= KEEP_ALIVE * 0.9

    with counts(server, "idle", 1):
        run(scenario)


def test_headers_dripped_a_byte_at_a_time_get_408_and_the_connection_closed(server: Process) -> None:
    async def scenario() -> None:
        reader, writer = await connect(server)
        sending = asyncio.create_task(
            drip(writer, b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 200, 0.05)
        )
        try:
            received, seconds = await until_closed(reader, HEAD_TIMEOUT + SLACK)
        finally:
            sending.cancel()
            await close(writer)
        assert_json_error(received, 408, "request_timeout")
        assert seconds >= HEAD_TIMEOUT * 0.9

    with counts(server, "head_timeout", 1):
        run(scenario)


def test_a_body_stalled_half_way_is_cut_off(server: Process) -> None:
    async def scenario() -> None:
        reader, writer = await connect(server)
        writer.write(request("POST", WEBHOOK, body=b"x" * 200)[:-100])
        try:
            received, seconds = await until_closed(reader, BODY_TIMEOUT + SLACK)
        finally:
            await close(writer)
        assert received == b""  # nothing to answer: the app was told the client is gone
        assert seconds >= BODY_TIMEOUT * 0.9

    with counts(server, "body_timeout", 1):
        run(scenario)


def test_a_body_dripped_slowly_is_cut_off(server: Process) -> None:
    async def scenario() -> None:
        reader, writer = await connect(server)
        whole = request("POST", WEBHOOK, body=b"x" * 200)
        head = whole[:-200]
        writer.write(head)
        sending = asyncio.create_task(drip(writer, whole[len(head) :], 0.05))  # 10 s for all of it
        try:
            received, seconds = await until_closed(reader, BODY_TIMEOUT + SLACK)
        finally:
            sending.cancel()
            await close(writer)
        assert received == b""
        assert seconds >= BODY_TIMEOUT * 0.9

    with counts(server, "body_timeout", 1):
        run(scenario)


HEAD_START = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: "
# Trailers are headers too, buffered by the parser just the same.
TRAILER_START = b"POST /webhooks/lm HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Big: "
MB = 1024 * 1024


@pytest.mark.parametrize(
    ("start", "size"),
    [(HEAD_START, MB), (HEAD_START, 50 * MB), (TRAILER_START, 50 * MB)],
    ids=["header-1MB", "header-50MB", "trailer-50MB"],
)
def test_a_huge_header_gets_431_at_once_and_is_never_buffered(server: Process, start: bytes, size: int) -> None:
    rss_before = server.rss_bytes()

    async def scenario() -> None:
        reader, writer = await connect(server)
        started = time.monotonic()

        async def flood() -> None:
            # Streamed, as an attacker would: the header is never complete while the server reads.
            writer.write(start)
            piece, sent = b"B" * 65536, 0
            with contextlib.suppress(ConnectionError):
                while sent < size:
                    writer.write(piece)
                    await writer.drain()
                    sent += len(piece)
                writer.write(b"\r\n\r\n")
                await writer.drain()

        sending = asyncio.create_task(flood())
        try:
            response = await asyncio.wait_for(read_response(reader), 10)
        finally:
            sending.cancel()  # stop sending once the server has answered
            await close(writer)
        assert response.status == 431, response
        assert response.headers["connection"] == "close"
        assert json.loads(response.body)["error"] == "headers_too_large"
        assert time.monotonic() - started < 2

    with counts(server, "header_too_large", 1):
        run(scenario, timeout=60)
    assert server.rss_bytes() - rss_before < 10 * 1024 * 1024
    assert "BBBB" not in server.log_text()  # no header value reaches the log


def test_too_many_headers_get_431(server: Process) -> None:
    async def scenario() -> None:
        reader, writer = await connect(server)
        writer.write(request("GET", "/healthz", {f"X-Many-{n}": "v" for n in range(MAX_HEADERS + 5)}))
        try:
            received, _ = await until_closed(reader, SLACK)
        finally:
            await close(writer)
        assert_json_error(received, 431, "headers_too_large")

    with counts(server, "too_many_headers", 1):
        run(scenario)


def test_connections_beyond_the_cap_get_503_with_retry_after(server: Process) -> None:
    async def scenario() -> None:
        held = [await connect(server) for _ in range(MAX_CONNECTIONS)]
        try:
            await asyncio.sleep(0.2)  # all accepted (well within the idle timeout)
            reader, writer = await connect(server)
            writer.write(request("GET", "/healthz"))
            try:
                response = await asyncio.wait_for(read_response(reader), SLACK)
            finally:
                await close(writer)
            assert response.status == 503, response
            assert response.headers["retry-after"] == str(RETRY_AFTER)
            assert json.loads(response.body)["error"] == "unavailable"
            for held_reader, _ in held:  # the connections within the cap were left alone
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(held_reader.read(1), 0.01)
        finally:
            for _, held_writer in held:
                await close(held_writer)
        await asyncio.sleep(0.2)  # the server has seen them go before the next test counts

    with counts(server, "too_many_connections", 1):
        run(scenario)


def test_requests_beyond_the_concurrency_cap_get_503_with_retry_after(server: Process) -> None:
    async def scenario() -> None:
        held = []
        for _ in range(MAX_REQUESTS):  # each in flight: headers and half its body
            reader, writer = await connect(server)
            writer.write(request("POST", WEBHOOK, body=b"x" * 200)[:-100])
            held.append((reader, writer))
        try:
            await asyncio.sleep(0.2)  # all being handled (well within the body timeout)
            reader, writer = await connect(server)
            writer.write(request("GET", "/healthz"))
            try:
                response = await asyncio.wait_for(read_response(reader), SLACK)
            finally:
                await close(writer)
            assert response.status == 503, response
            assert response.headers["retry-after"] == str(RETRY_AFTER)
            assert json.loads(response.body)["error"] == "unavailable"
        finally:
            for _, held_writer in held:
                await close(held_writer)
        await asyncio.sleep(0.2)

    with counts(server, "too_many_requests", 1):
        run(scenario)


def test_a_normal_client_is_served_while_slow_clients_are_cut_off(server: Process) -> None:
    async def silent() -> float:
        reader, writer = await connect(server)
        try:
            return (await until_closed(reader, KEEP_ALIVE + SLACK))[1]
        finally:
            await close(writer)

    async def slow_head() -> float:
        reader, writer = await connect(server)
        sending = asyncio.create_task(drip(writer, b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"s" * 200, 0.05))
        try:
            return (await until_closed(reader, HEAD_TIMEOUT + SLACK))[1]
        finally:
            sending.cancel()
            await close(writer)

    async def slow_body(interval: float | None) -> float:
        reader, writer = await connect(server)
        whole = request("POST", WEBHOOK, body=b"x" * 200)
        writer.write(whole[:-150])
        sending = asyncio.create_task(drip(writer, whole[-150:], interval)) if interval else None
        try:
            return (await until_closed(reader, BODY_TIMEOUT + SLACK))[1]
        finally:
            if sending is not None:
                sending.cancel()
            await close(writer)

    async def normal() -> list[float]:
        """Several GET /healthz over one keep-alive connection, each a moment after the last."""
        reader, writer = await connect(server)
        latencies = []
        try:
            for _ in range(6):
                started = time.monotonic()
                writer.write(request("GET", "/healthz"))
                response = await asyncio.wait_for(read_response(reader), 2)
                assert (response.status, json.loads(response.body)) == (200, {"status": "ok"})
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.25)
        finally:
            await close(writer)
        return latencies

    async def scenario() -> None:
        hostile = [
            *(silent() for _ in range(3)),
            *(slow_head() for _ in range(3)),
            slow_body(None),
            slow_body(0.1),
        ]
        *cut_after, latencies = await asyncio.gather(*hostile, normal())
        assert max(latencies) < 0.5, latencies
        assert all(0.9 <= seconds <= 1 + SLACK for seconds in cut_after), cut_after  # every one cut off

    with counts(server, "idle", 3), counts(server, "head_timeout", 3), counts(server, "body_timeout", 2):
        run(scenario)


def test_each_cut_off_is_one_short_warning_line_without_header_values(server: Process) -> None:
    async def too_many_headers() -> int:
        reader, writer = await connect(server)
        port = writer.get_extra_info("sockname")[1]
        writer.write(request("GET", "/healthz", {f"X-Secret-{n}": "token-VALUE-1" for n in range(MAX_HEADERS + 1)}))
        try:
            await until_closed(reader, SLACK)
        finally:
            await close(writer)
        return int(port)

    async def slow_head() -> int:
        reader, writer = await connect(server)
        port = writer.get_extra_info("sockname")[1]
        sending = asyncio.create_task(drip(writer, b"GET /healthz HTTP/1.1\r\nAuthorization: token-VALUE-2", 0.05))
        try:
            await until_closed(reader, HEAD_TIMEOUT + SLACK)
        finally:
            sending.cancel()
            await close(writer)
        return int(port)

    ports: list[int] = []

    async def scenario() -> None:
        ports.extend(await asyncio.gather(too_many_headers(), slow_head()))

    run(scenario)
    time.sleep(0.2)
    log = server.log_text()
    for port in ports:
        lines = [line for line in log.splitlines() if f"127.0.0.1:{port} " in line]
        assert len(lines) == 1, lines
        # Text or JSON lines alike: the level, the logger and the message, nothing more.
        assert all(part in lines[0] for part in ("WARNING", "bridge.server", " cut off (")), lines[0]
        assert len(lines[0]) < 300, lines[0]
        assert "Traceback" not in lines[0]
    assert "token-VALUE" not in log
