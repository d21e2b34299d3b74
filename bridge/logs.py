"""Logging for the bridge: JSON or text lines on stderr, request ids, masked addresses, rate-limited librdkafka.

Wiring (one call each; nothing here runs at import time)::

    logs.configure(args.log_level, "json")              # first thing in main(); replaces logging.basicConfig
    uvicorn.run(app, log_config=logs.UVICORN_LOG_CONFIG, log_level=...)   # uvicorn installs no handlers
    app = logs.RequestId(starlette_app)                 # outermost, so 500s get the header as well
    Producer({..., "logger": logs.kafka_logger()})      # librdkafka's lines -> "bridge.kafka", rate-limited

Pass the delivery's fields as extras and they become JSON keys (or ` key=value` in text)::

    log.info("published %d records", n, extra={"source": name, "provider": p, "status": 202, "event_ids": ids})

Only these extras are written: ``EXTRAS`` = request_id, source, provider, status, event_ids, reason, code, pid
(pid only where ``configure(pid=True)``: `serve --workers N`, so that a line says which worker wrote it).

What the "no secrets, signatures, credentials or bodies" guarantee rests on:

* This module adds nothing to a line but the record's own fields (time, level, logger name, formatted
  message), those seven extras when the caller set them, the exception's type, message and traceback (code
  lines only, never local variables), and the request id. It never reads a header other than
  ``X-Request-ID``, and never reads a body. Other attributes set on a record are not written.
* ``X-Request-ID`` is taken from the client only when it is 1-128 printable ASCII characters without spaces,
  so it cannot break a line or smuggle in a second one; otherwise a uuid4 is generated.
* uvicorn's access lines lose their query string (a URL copied into a provider's console with ``?token=...``
  would otherwise be logged on every delivery); the path, method, client address and status stay.
* httpx/httpx2/httpcore log at WARNING at most: the registry client would log every request, URL included.
* Everything else is the callers' part: they must not pass secrets, signature headers, credentials or bodies
  in messages, extras or exception messages. E-mail addresses in the message, in the extras and in exception
  text are masked (``jane.doe@example.com`` -> ``j***@example.com``, see ``mask``), so a dead-letter reason
  that quotes a recipient is safe to ship; nothing else is recognised or redacted.

Exceptions: every line with ``exc_info`` carries ``exc_type`` and ``exc`` (``str(exception)``, masked, at most
``EXC_CHARS`` characters). A ``traceback`` is added for records at ERROR and above (``log.exception`` and real
failures; rare by design), and for any level when configured at DEBUG. Below ERROR otherwise it is left out,
so an expected failure logged as a WARNING with ``exc_info`` stays one short line.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "EXTRAS",
    "KAFKA_LOGGER",
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "TEXT_FORMAT",
    "UVICORN_LOGGERS",
    "UVICORN_LOG_CONFIG",
    "AddRequestId",
    "Format",
    "JsonFormatter",
    "MaskEmails",
    "RateLimit",
    "RequestId",
    "TextFormatter",
    "configure",
    "current_request_id",
    "kafka_logger",
    "librdkafka_key",
    "mask",
]

Format = Literal["json", "text"]

EXTRAS: Final = ("request_id", "source", "provider", "status", "event_ids", "reason", "code", "pid")
"""The record attributes written to a line when present (not None), in this order."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The text format's prefix (the bridge's format before JSON); ` key=value` per extra follows it."""

EXC_CHARS: Final = 500
"""At most this many characters of ``str(exception)`` go into ``exc``."""

UVICORN_LOG_CONFIG: Final = None
"""Pass as ``uvicorn.run(..., log_config=UVICORN_LOG_CONFIG)``. With None uvicorn runs no dictConfig: its
loggers ("uvicorn", "uvicorn.error", "uvicorn.access") keep no handlers of their own and propagate to the root
handler that ``configure`` installed, so they share its format, request ids and masking. uvicorn still sets
their levels from its ``log_level`` argument. Call ``configure`` before ``uvicorn.run``."""

UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
QUIET_LOGGERS: Final = ("httpx", "httpx2", "httpcore")
"""Held at WARNING: the registry client logs every HTTP request (URL included) at INFO, httpcore at DEBUG."""

KAFKA_LOGGER: Final = "bridge.kafka"
REQUEST_ID_HEADER: Final = "x-request-id"
REQUEST_ID_MAX_CHARS: Final = 128
_REQUEST_ID_NAME: Final = REQUEST_ID_HEADER.encode()
RATE_LIMIT_MAX_KEYS: Final = 1024

_TRACE = 5  # uvicorn's TRACE level; uvicorn names it only once it has started
REQUEST_ID: ContextVar[str | None] = ContextVar("bridge_request_id", default=None)
"""The current request's id, set by ``RequestId`` for the duration of each HTTP request."""


# --- configure ---------------------------------------------------------------------------------------------


class _Handler(logging.StreamHandler[TextIO]):
    """The one handler ``configure`` installs on the root logger (found again by its class).

    Without an explicit stream it writes to whatever ``sys.stderr`` is at the time of each line, so pytest's
    capture and a redirected stderr see the lines too."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def configure(level: str, fmt: Format, *, stream: TextIO | None = None, pid: bool = False) -> None:
    """Send every logger's lines, uvicorn's and librdkafka's included, to stderr as JSON or text at `level`.

    `level` is a level name in any case ("info", "DEBUG", "warning", "trace"…). Idempotent: a second call
    replaces the handler the first one installed (so the last format and level win) and adds nothing twice.
    Handlers installed by others (pytest's caplog, say) are left alone. `stream` is for tests.
    """
    numeric = _level(level)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter(debug=numeric <= logging.DEBUG)
    elif fmt == "text":
        formatter = TextFormatter(debug=numeric <= logging.DEBUG)
    else:
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    handler = _Handler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(AddRequestId())
    if pid:
        handler.addFilter(AddPid())
    handler.addFilter(MaskEmails())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)

    for name in UVICORN_LOGGERS:  # undo a dictConfig that ran earlier in this process (tests, uvicorn's default)
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessLine) for f in access.filters):
        access.addFilter(_AccessLine())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _level(name: str) -> int:
    upper = name.strip().upper()
    if upper == "TRACE":
        return _TRACE
    levels = logging.getLevelNamesMapping()
    if upper not in levels or upper == "NOTSET":
        raise ValueError(f"unknown log level {name!r}")
    return levels[upper]


class _AccessLine(logging.Filter):
    """uvicorn.access: drop the query string from the path and expose the HTTP status as `status`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            if isinstance(path, str) and "?" in path:
                record.args = (client, method, path.split("?", 1)[0], version, status)
            if isinstance(status, int) and getattr(record, "status", None) is None:
                record.status = status
        return True


# --- formatters --------------------------------------------------------------------------------------------


class _Base(logging.Formatter):
    def __init__(self, debug: bool = False) -> None:
        super().__init__(TEXT_FORMAT)
        self.debug = debug

    def _exception(self, record: logging.LogRecord) -> tuple[str, str, str | None] | None:
        """(exc_type, exc, traceback or None) for a record with exc_info, masked."""
        if not record.exc_info or record.exc_info[0] is None:
            return None
        exc_type, exc_value, _ = record.exc_info
        module = exc_type.__module__
        name = exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
        try:
            text = str(exc_value)
        except Exception:  # noqa: BLE001 — a broken __str__ must not lose the line
            text = "<unprintable>"
        if len(text) > EXC_CHARS:
            text = text[:EXC_CHARS] + "…"
        traceback = None
        if record.levelno >= logging.ERROR or self.debug:
            traceback = mask(self.formatException(record.exc_info))
        return name, mask(text), traceback


class JsonFormatter(_Base):
    """One JSON object per line: time (UTC, ms), level, logger, message, the EXTRAS present, exceptions."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extras(record))
        exception = self._exception(record)
        if exception is not None:
            line["exc_type"], line["exc"], traceback = exception
            if traceback is not None:
                line["traceback"] = traceback
        if record.stack_info:
            line["stack"] = mask(self.formatStack(record.stack_info))
        try:
            return orjson.dumps(line, default=str).decode()  # a tenth of json.dumps: one line per delivery
        except TypeError:  # text that is not valid Unicode (a lone surrogate): json.dumps escapes it
            return json.dumps(line, default=str)


class TextFormatter(_Base):
    """``TEXT_FORMAT`` plus `` key=value`` per extra present; line breaks in the message are escaped."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().rstrip().replace("\r", "\\r").replace("\n", "\\n")
        parts = [f"{self.formatTime(record)} {record.levelname} {record.name}: {message}"]
        parts.extend(f" {key}={_text_value(value)}" for key, value in _extras(record))
        exception = self._exception(record)
        if exception is not None:
            exc_type, exc, traceback = exception
            parts.append(f" exc_type={_text_value(exc_type)} exc={_text_value(exc)}")
            if traceback is not None:
                parts.append("\n" + traceback)
        if record.stack_info:
            parts.append("\n" + mask(self.formatStack(record.stack_info)))
        return "".join(parts)


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    for key in EXTRAS:
        value = getattr(record, key, None)
        if value is not None:
            yield key, list(value) if isinstance(value, tuple | set | frozenset) else value


_QUOTED = re.compile(r"[\s\"'=]")  # a value with any of these is written as a JSON string


def _text_value(value: Any) -> str:
    text = ",".join(str(item) for item in value) if isinstance(value, list) else str(value)
    if not text or not text.isprintable() or _QUOTED.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


# --- request ids -------------------------------------------------------------------------------------------


def current_request_id() -> str | None:
    """The id of the HTTP request being handled, or None outside one."""
    return REQUEST_ID.get()


class RequestId:
    """ASGI middleware: an id per HTTP request, in ``REQUEST_ID`` while it runs and in its ``x-request-id``.

    The client's ``X-Request-ID`` is kept when it is 1-128 printable ASCII characters without spaces;
    otherwise (absent, empty, too long, spaces, control or non-ASCII bytes) 32 random hex digits are used. The
    response's ``x-request-id`` is always this id (one the app set is replaced). Other scopes pass through.
    Wrap the whole Starlette app so that the 500s of its error middleware carry the header too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # An id, not a secret: random's generator (reseeded in a forked child) is a tenth of uuid4's cost.
        request_id = _incoming_id(scope.get("headers", ())) or f"{random.getrandbits(128):032x}"
        header = (_REQUEST_ID_NAME, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _REQUEST_ID_NAME]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


def _incoming_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first X-Request-ID header's value when it is acceptable, else None."""
    for name, value in headers:
        if name == _REQUEST_ID_NAME or (len(name) == len(_REQUEST_ID_NAME) and name.lower() == _REQUEST_ID_NAME):
            if 1 <= len(value) <= REQUEST_ID_MAX_CHARS and all(0x21 <= byte <= 0x7E for byte in value):
                return value.decode("ascii")
            return None
    return None


class AddPid(logging.Filter):
    """Sets `pid` (the process that wrote the line) on every record: one worker's lines among several."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.pid = record.process
        return True


class AddRequestId(logging.Filter):
    """Sets `request_id` on every record handled while ``REQUEST_ID`` is set (unless the record has one).

    Installed on the handler by ``configure``, so it sees records propagated from every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
        return True


# --- masking -----------------------------------------------------------------------------------------------

_LOCAL = r"[\w.+%#$^~*!-]"
# Starts only where a run of local-part characters starts (the lookbehind), and local part and domain cannot
# overlap, so a search is linear in the text's length. "@" URL-encoded as "%40" counts too.
_EMAIL = re.compile(rf"(?<!{_LOCAL})({_LOCAL}){_LOCAL}*(@|%40)([\w-]+(?:\.[\w-]+)+)")


def mask(text: str) -> str:
    """Mask every e-mail address in `text`: ``jane.doe@example.com`` -> ``j***@example.com``.

    Keeps the first character of the local part and the whole domain; idempotent."""
    if "@" not in text and "%40" not in text:
        return text
    return _EMAIL.sub(r"\1***\2\3", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [mask(item) if isinstance(item, str) else item for item in value]
    return value


class MaskEmails(logging.Filter):
    """Masks e-mail addresses in the formatted message and in the EXTRAS of every record it sees.

    The record is changed in place: its message is formatted once and kept as ``msg`` (``args`` cleared)
    when masking changed it; a call with arguments that do not fit is left for the formatter to report."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — the formatter reports a bad call; a filter must not raise into it
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key in EXTRAS:
            value = getattr(record, key, None)
            if value is not None:
                setattr(record, key, _mask_value(value))
        return True


# --- rate limiting -----------------------------------------------------------------------------------------


def _template_key(record: logging.LogRecord) -> Hashable:
    return (record.name, record.msg, record.levelno)


_STANDALONE_NUMBER = re.compile(r"(?<![\w.:#/-])\d+(?:ms|us|s)?(?![\w.:/-])")


def librdkafka_key(record: logging.LogRecord) -> Hashable:
    """The rate-limit key for librdkafka's lines.

    confluent-kafka logs every librdkafka line with the one template ``"%s [%s] %s"`` (facility, client name,
    text), so the template alone would merge unrelated lines. The key is the logger, level, facility, client
    and the text with its standalone numbers (``after 12ms``, ``3 identical error(s)``) blanked; addresses and
    ports are kept, so each broker's failure is counted apart."""
    args = record.args
    if record.msg == "%s [%s] %s" and isinstance(args, tuple) and len(args) == 3:
        facility, client, text = args
        return (record.name, record.levelno, str(facility), str(client), _STANDALONE_NUMBER.sub("#", str(text)))
    return _template_key(record)


@dataclass
class _Seen:
    passed: float
    suppressed: int = 0


class RateLimit(logging.Filter):
    """Lets the first record of each key through and drops its repeats for `seconds`.

    The key is (logger name, message template, level) unless `key` says otherwise. After `seconds` the next
    repeat goes through with `` (N similar suppressed)`` appended to its message, and a new window starts.
    At most `max_keys` keys are remembered; beyond that the one let through longest ago is forgotten (with
    the count of its suppressed repeats). Thread-safe: librdkafka's lines arrive on the producer's poll thread.
    Install it on the logger that emits the records (a logger's filters do not see propagated records).
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        key: Callable[[logging.LogRecord], Hashable] = _template_key,
        max_keys: int = RATE_LIMIT_MAX_KEYS,
    ) -> None:
        super().__init__()
        self.seconds = seconds
        self._clock = clock
        self._key = key
        self._max_keys = max_keys
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        try:
            key = self._key(record)
            hash(key)
        except Exception:  # noqa: BLE001 — an unhashable msg is let through rather than raise into the caller
            return True
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.passed < self.seconds:
                seen.suppressed += 1
                return False
            suppressed = seen.suppressed if seen is not None else 0
            self._seen[key] = _Seen(now)
            self._seen.move_to_end(key)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar suppressed)"
        return True


def kafka_logger(seconds: float = 10.0) -> logging.Logger:
    """The "bridge.kafka" logger, for confluent-kafka's ``logger`` setting, rate-limited by ``librdkafka_key``.

    The RateLimit filter is attached once; a later call only changes its window to `seconds`. confluent-kafka
    hands librdkafka's lines to this logger from ``poll()``/``flush()``, at the Python level matching their
    syslog level; they propagate to the root handler like every other line."""
    logger = logging.getLogger(KAFKA_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, RateLimit):
            existing.seconds = seconds
            return logger
    logger.addFilter(RateLimit(seconds, key=librdkafka_key))
    return logger
