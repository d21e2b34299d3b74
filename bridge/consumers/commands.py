"""`bridge consumer run|report`: build a consumer's store and runner from the settings, and print reports."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from bridge.app import registry_client
from bridge.config import Settings
from bridge.consumers import CONSUMERS
from bridge.consumers.framework import Consumer, Query, Rows, Runner, RunOptions, RunSummary, prepare
from bridge.consumers.http import Server
from bridge.consumers.store import Store, open_store, redacted
from bridge.errors import ConfigError

FORMATS = ("table", "json")


class Failed(Exception):
    """The store failed mid-run (the database went away): nothing past the last committed batch is lost."""


@dataclass(frozen=True)
class RunRequest:
    name: str
    store: str | None = None
    from_beginning: bool = False
    until_caught_up: bool = False
    http_host: str = "127.0.0.1"
    http_port: int | None = None


def consumer_named(name: str) -> Consumer:
    if name not in CONSUMERS:
        raise ConfigError(f"no consumer named {name!r}; known: {', '.join(CONSUMERS)}")
    return CONSUMERS[name]()


def run(settings: Settings, request: RunRequest) -> tuple[RunSummary, str]:
    """Run until SIGTERM/SIGINT (or caught up); the summary and the (redacted) store URL."""
    consumer = consumer_named(request.name)
    if request.http_port is not None and consumer.name != "suppression":
        raise ConfigError("--http-port: only the suppression consumer serves HTTP")
    url = request.store or settings.consumers.store_for(consumer.name)
    options = RunOptions(
        group=settings.consumers.group_for(consumer.name, settings.topics.prefix),
        prefix=settings.topics.prefix,
        batch_size=settings.consumers.batch_size,
        poll_seconds=settings.consumers.poll_seconds,
        from_beginning=request.from_beginning,
        until_caught_up=request.until_caught_up,
    )
    stop = threading.Event()
    with _storing(url) as store, registry_client(settings) as registry, _stopped_by_signals(stop):
        prepare(store, consumer)
        with contextlib.ExitStack() as serving:
            if request.http_port is not None:
                serving.enter_context(Server(store, request.http_host, request.http_port))
            runner = Runner(consumer, store, settings.kafka, registry, options, stop)
            return runner.run(), redacted(url)


def report(settings: Settings, name: str, store_url: str | None, query: Query) -> dict[str, Rows]:
    consumer = consumer_named(name)
    if query.address is not None and consumer.name != "suppression":
        raise ConfigError("--address: only the suppression report looks up one address")
    with _storing(store_url or settings.consumers.store_for(consumer.name)) as store:
        prepare(store, consumer)  # a report of a store no run has made yet is empty, not an error
        with store.transaction() as work:
            return consumer.report(work, query)


def render(sections: dict[str, Rows], form: str) -> str:
    if form == "json":
        return json.dumps(sections, indent=2, ensure_ascii=False)
    return "\n\n".join(f"{name}\n{_table(rows)}" for name, rows in sections.items())


def _table(rows: Rows) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [columns, *[["" if row[c] is None else str(row[c]) for c in columns] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells
    )


@contextlib.contextmanager
def _storing(url: str) -> Iterator[Store]:
    store = open_store(url)
    try:
        yield store
    except (sqlite3.Error, psycopg.Error) as error:
        raise Failed(f"store {redacted(url)}: {error}") from error
    finally:
        store.close()


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop`: the runner finishes its batch, commits, and closes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
