"""bridge.logs: JSON and text lines, idempotent configure, request ids, masking, rate limiting, librdkafka."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Producer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bridge import logs

TOUCHED = ("", *logs.UVICORN_LOGGERS, *logs.QUIET_LOGGERS, logs.KAFKA_LOGGER, "test.logs")
ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure() changes process-wide state: put every logger it touches back as it was."""
    saved = {}
    for name in TOUCHED:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), list(logger.filters), logger.level, logger.propagate)
    yield
    for name, (handlers, filters, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.filters[:] = filters
        logger.setLevel(level)
        logger.propagate = propagate


def configured(fmt: logs.Format, level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level, fmt, stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]


# --- JSON ---------------------------------------------------------------------------------------------------


def test_json_line_carries_fields_and_extras() -> None:
    stream = configured("json")
    extra = {
        "source": "lettermint",
        "provider": "lettermint",
        "status": 202,
        "event_ids": ("e1", "e2"),
        "reason": "bad field",
        "code": "invalid_payload",
        "secret": "not-written",
    }
    logging.getLogger("test.logs").info("published %d records", 2, extra=extra)
    [line] = json_lines(stream)
    assert ISO_UTC_MS.match(str(line.pop("time")))
    assert line == {
        "level": "INFO",
        "logger": "test.logs",
        "message": "published 2 records",
        "source": "lettermint",
        "provider": "lettermint",
        "status": 202,
        "event_ids": ["e1", "e2"],
        "reason": "bad field",
        "code": "invalid_payload",
    }


def test_json_time_is_utc() -> None:
    stream = configured("json")
    record = logging.makeLogRecord({"name": "test.logs", "msg": "x", "levelno": 20, "levelname": "INFO"})
    record.created = 0.5
    ours()[0].handle(record)
    assert json_lines(stream)[0]["time"] == "1970-01-01T00:00:00.500Z"


def test_json_exception_below_error_is_short() -> None:
    stream = configured("json")
    try:
        raise ValueError("bad value for jane.doe@example.com\nsecond line")
    except ValueError:
        logging.getLogger("test.logs").warning("parsing failed", exc_info=True)
    [line] = json_lines(stream)
    assert line["exc_type"] == "ValueError"
    assert line["exc"] == "bad value for j***@example.com\nsecond line"
    assert "traceback" not in line


def test_json_exception_at_error_has_traceback() -> None:
    stream = configured("json")
    try:
        raise RuntimeError("x" * 2000)
    except RuntimeError:
        logging.getLogger("test.logs").exception("provider bug")
    [line] = json_lines(stream)
    assert line["exc_type"] == "RuntimeError"
    assert len(str(line["exc"])) == logs.EXC_CHARS + 1
    assert "Traceback (most recent call last)" in str(line["traceback"])


def test_json_traceback_for_any_level_at_debug() -> None:
    stream = configured("json", "DEBUG")
    try:
        raise KeyError("k")
    except KeyError:
        logging.getLogger("test.logs").info("lookup failed", exc_info=True)
    [line] = json_lines(stream)
    assert line["exc_type"] == "KeyError"
    assert "traceback" in line


def test_json_qualifies_non_builtin_exception_types() -> None:
    stream = configured("json")
    try:
        raise json.JSONDecodeError("bad", "doc", 0)
    except ValueError:
        logging.getLogger("test.logs").warning("x", exc_info=True)
    assert json_lines(stream)[0]["exc_type"] == "json.decoder.JSONDecodeError"


# --- text ---------------------------------------------------------------------------------------------------


def test_text_format_with_extras() -> None:
    stream = configured("text")
    extra = {"source": "s1", "status": 422, "event_ids": ["a", "b"], "reason": 'quoted "x" and spaces'}
    logging.getLogger("test.logs").warning("dead letter for %s", "jane.doe@example.com", extra=extra)
    line = stream.getvalue().rstrip("\n")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING test\.logs: dead letter for j\*\*\*@example\.com"
        r' source=s1 status=422 event_ids=a,b reason="quoted \\"x\\" and spaces"',
        line,
    ), line


def test_text_escapes_line_breaks_and_keeps_exceptions_short() -> None:
    stream = configured("text")
    try:
        raise ValueError("nope")
    except ValueError:
        logging.getLogger("test.logs").warning("forged\nINFO bridge: fake line", exc_info=True)
    [line] = stream.getvalue().splitlines()
    assert line.endswith(r"test.logs: forged\nINFO bridge: fake line exc_type=ValueError exc=nope")


# --- configure ----------------------------------------------------------------------------------------------


def test_configure_is_idempotent_and_last_call_wins() -> None:
    first = configured("text")
    second = configured("json", "warning")
    third = configured("json", "warning")
    assert len(ours()) == 1
    assert logging.getLogger().level == logging.WARNING
    assert len([f for f in logging.getLogger("uvicorn.access").filters if type(f).__name__ == "_AccessLine"]) == 1
    logging.getLogger("test.logs").warning("once")
    assert first.getvalue() == second.getvalue() == ""
    assert [line["message"] for line in json_lines(third)] == ["once"]


def test_configure_leaves_other_handlers_alone() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    configured("json")
    configured("json")
    assert other in logging.getLogger().handlers


def test_configure_rejects_unknown_level_and_format() -> None:
    with pytest.raises(ValueError, match="log level"):
        logs.configure("loud", "json")
    with pytest.raises(ValueError, match="log format"):
        logs.configure("info", "xml")  # type: ignore[arg-type]


def test_uvicorn_lines_share_the_handler_and_lose_the_query_string() -> None:
    logging.getLogger("uvicorn").addHandler(logging.NullHandler())  # as uvicorn's default dictConfig leaves it
    logging.getLogger("uvicorn.access").propagate = False
    stream = configured("json")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "POST", "/webhooks/s1?token=hunter2", "1.1", 202)
    started, line = json_lines(stream)
    assert started["logger"] == "uvicorn.error"
    assert line["message"] == '10.0.0.1:5000 - "POST /webhooks/s1 HTTP/1.1" 202'
    assert line["status"] == 202
    assert logging.getLogger("uvicorn").handlers == []


def test_quiet_loggers_held_at_warning() -> None:
    stream = configured("json", "debug")
    logging.getLogger("httpx").info("HTTP Request: GET http://registry/subjects")
    logging.getLogger("httpx2").info("HTTP Request: GET http://registry/subjects")
    logging.getLogger("httpx").warning("kept")
    assert [line["message"] for line in json_lines(stream)] == ["kept"]


def test_follows_stderr_without_a_stream(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "json")
    logging.getLogger("test.logs").info("to stderr")
    assert json.loads(capsys.readouterr().err)["message"] == "to stderr"


# --- request ids --------------------------------------------------------------------------------------------


@dataclass
class Seen:
    ids: list[str | None] = field(default_factory=list)


def request_app(seen: Seen) -> TestClient:
    async def endpoint(request: Request) -> PlainTextResponse:
        seen.ids.append(logs.current_request_id())
        logging.getLogger("test.logs").info("handling", extra={"source": "s1"})
        return PlainTextResponse("ok", headers={"x-request-id": "set-by-app"})

    return TestClient(logs.RequestId(Starlette(routes=[Route("/", endpoint)])))


@pytest.mark.parametrize("incoming", ["abc-123", "a" * 128, "!~", "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_valid_request_id_is_echoed(incoming: str) -> None:
    seen = Seen()
    with request_app(seen) as client:
        response = client.get("/", headers={"X-Request-ID": incoming})
    assert response.headers.get_list("x-request-id") == [incoming]
    assert seen.ids == [incoming]


@pytest.mark.parametrize("incoming", [None, "", "a" * 129, "has space", "tab\there", "caf\xe9"])
def test_absent_or_invalid_request_id_is_generated(incoming: str | None) -> None:
    # bytes, so that a non-ASCII value reaches the app as sent
    seen = Seen()
    headers = {} if incoming is None else {b"X-Request-ID": incoming.encode("latin-1")}
    with request_app(seen) as client:
        response = client.get("/", headers=headers)
    [generated] = response.headers.get_list("x-request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert seen.ids == [generated]


def test_request_id_is_on_records_inside_the_request_only() -> None:
    stream = configured("json")
    with request_app(Seen()) as client:
        client.get("/", headers={"X-Request-ID": "req-1"})
        client.get("/")
    logging.getLogger("test.logs").info("outside")
    first, second, outside = json_lines(stream)
    assert (first["request_id"], first["source"], first["message"]) == ("req-1", "s1", "handling")
    assert re.fullmatch(r"[0-9a-f]{32}", str(second["request_id"]))
    assert "request_id" not in outside
    assert logs.current_request_id() is None


def test_non_http_scopes_pass_through() -> None:
    calls: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        calls.append(str(scope["type"]))
        assert logs.current_request_id() is None

    async def receive() -> dict[str, object]:
        return {}

    async def send(message: object) -> None:
        return None

    asyncio.run(logs.RequestId(app)({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    assert calls == ["lifespan"]


# --- masking ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("to <Jane.Doe+tag@mail.example.co.uk>, cc x@y.org.", "to <J***@mail.example.co.uk>, cc x***@y.org."),
        ("recipient=jane@example.com", "recipient=j***@example.com"),
        ("'jane@example.com'", "'j***@example.com'"),
        ('{"to": "jöhn@exämple.de"}', '{"to": "j***@exämple.de"}'),
        ("jane%40example.com", "j***%40example.com"),
        ("j***@example.com", "j***@example.com"),
        ("no address here, user@localhost, @handle", "no address here, user@localhost, @handle"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert logs.mask(text) == masked


def test_mask_is_linear_on_hostile_text() -> None:
    started = time.perf_counter()
    logs.mask("a" * 200_000 + "@")
    logs.mask("a@" * 100_000)
    logs.mask("a." * 100_000 + "@x")
    assert time.perf_counter() - started < 2


def test_masking_in_message_and_extras() -> None:
    stream = configured("json")
    logging.getLogger("test.logs").error(
        "dead letter: %s",
        "bounce for jane.doe@example.com",
        extra={"reason": "recipient jane.doe@example.com rejected", "event_ids": ["bob@example.org"]},
    )
    [line] = json_lines(stream)
    assert line["message"] == "dead letter: bounce for j***@example.com"
    assert line["reason"] == "recipient j***@example.com rejected"
    assert line["event_ids"] == ["b***@example.org"]
    assert "jane" not in stream.getvalue()


def test_mask_filter_leaves_unmasked_records_and_bad_calls_alone() -> None:
    record = logging.makeLogRecord({"msg": "%d records", "args": (3,)})
    assert logs.MaskEmails().filter(record)
    assert (record.msg, record.args) == ("%d records", (3,))
    broken = logging.makeLogRecord({"msg": "%d records", "args": ("x",)})
    assert logs.MaskEmails().filter(broken)


# --- rate limiting ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str = "broker %s down", *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "test.logs", "msg": msg, "args": args, "levelno": level})


def test_rate_limit_drops_repeats_and_reports_them() -> None:
    clock = Clock()
    limit = logs.RateLimit(10, clock)
    assert limit.filter(record("broker %s down", "a"))
    clock.now += 1
    assert not limit.filter(record("broker %s down", "b"))  # same template
    clock.now += 8.9
    assert not limit.filter(record("broker %s down", "c"))
    assert limit.filter(record("other line"))  # another template
    assert limit.filter(record(level=logging.WARNING))  # another level
    clock.now += 0.1
    passed = record("broker %s down", "d")
    assert limit.filter(passed)
    assert passed.getMessage() == "broker d down (2 similar suppressed)"
    clock.now += 10
    quiet = record("broker %s down", "e")
    assert limit.filter(quiet)
    assert quiet.getMessage() == "broker e down"


def test_rate_limit_memory_is_bounded() -> None:
    clock = Clock()
    limit = logs.RateLimit(10, clock, max_keys=3)
    for n in range(5):
        assert limit.filter(record(f"line {n}"))
    assert len(limit._seen) == 3
    assert limit.filter(record("line 0"))  # forgotten, so let through again
    assert not limit.filter(record("line 4"))


def test_rate_limit_lets_unhashable_messages_through() -> None:
    limit = logs.RateLimit(10, Clock())
    assert limit.filter(logging.makeLogRecord({"msg": ["unhashable"]}))
    assert limit.filter(logging.makeLogRecord({"msg": ["unhashable"]}))


def test_librdkafka_key_separates_lines_the_template_would_merge() -> None:
    def line(text: str, facility: str = "FAIL") -> logging.LogRecord:
        return record("%s [%s] %s", facility, "rdkafka#producer-1", text)

    refused = (
        "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after {}ms in state CONNECT)"
    )
    key = logs.librdkafka_key
    assert key(line(refused.format(0))) == key(line(refused.format(1234)))
    assert key(line("1 identical error(s) suppressed")) == key(line("17 identical error(s) suppressed"))
    assert key(line(refused.format(0))) != key(line(refused.format(0).replace("127.0.0.1:1", "127.0.0.2:1")))
    assert key(line("x")) != key(line("x", facility="ERROR"))
    assert key(record("plain %s", "a")) == key(record("plain %s", "b"))


def test_kafka_logger_attaches_one_rate_limit() -> None:
    logger = logs.kafka_logger(5)
    assert logs.kafka_logger(7) is logger
    assert logger.name == "bridge.kafka"
    [limit] = [f for f in logger.filters if isinstance(f, logs.RateLimit)]
    assert limit.seconds == 7


def test_librdkafka_lines_reach_bridge_kafka() -> None:
    received: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record)

    stream = configured("json")
    logger = logs.kafka_logger()
    logger.addHandler(Collect())
    producer = Producer(
        {"bootstrap.servers": "127.0.0.1:1", "logger": logger, "socket.connection.setup.timeout.ms": 1000}
    )
    deadline = time.monotonic() + 2
    while not received and time.monotonic() < deadline:
        producer.poll(0.1)
    del producer
    assert received, "librdkafka logged nothing within 2 s"
    assert {r.name for r in received} == {"bridge.kafka"}
    assert len(received) == 1  # repeats of the refused connection are rate-limited
    lines = [line for line in json_lines(stream) if line["logger"] == "bridge.kafka"]
    assert lines
    assert "127.0.0.1:1" in str(lines[0]["message"])


def test_pid_is_written_only_when_asked() -> None:
    """`serve --workers N` asks for it: several processes write to one stream."""
    stream = configured("json")
    logging.getLogger("test.logs").warning("one process")
    stream_with_pid = io.StringIO()
    logs.configure("info", "json", stream=stream_with_pid, pid=True)
    logging.getLogger("test.logs").warning("a worker")
    assert "pid" not in json_lines(stream)[0]
    assert json_lines(stream_with_pid)[0]["pid"] == os.getpid()
