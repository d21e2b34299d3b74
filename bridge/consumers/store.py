"""The consumers' stores: SQLite or PostgreSQL by URL, one SQL dialect for both, migrations by version.

Consumers write `?` placeholders and portable SQL (ON CONFLICT upserts, CASE, row values); the only
difference between the two databases, the driver's parameter style, stays in this module.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg

from bridge.errors import ConfigError

Params = Sequence[object]
Row = tuple[Any, ...]
# SQLite waits this long for another process's write lock before failing (three consumers may share a file).
SQLITE_BUSY_MILLISECONDS = 30_000
# Migrations of every component run under one PostgreSQL advisory lock: two consumers starting at once on one
# database would otherwise race on CREATE TABLE IF NOT EXISTS.
MIGRATION_LOCK = 7_243_551_990
SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    component TEXT PRIMARY KEY,
    version BIGINT NOT NULL
)"""


class Transaction(Protocol):
    """The one thing consumers see of a database: statements inside a transaction."""

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query; every row."""


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Params = ..., /) -> object: ...
    def fetchall(self) -> list[Any]: ...


class _Work:
    """A Transaction over a DB-API cursor; `placeholder` replaces each `?`."""

    def __init__(self, cursor: _Cursor, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def execute(self, sql: str, params: Params = ()) -> int:
        self._cursor.execute(self._sql(sql), tuple(params))
        return int(self._cursor.rowcount)

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def _sql(self, sql: str) -> str:
        # Our SQL has no '?' or '%' in literals, so a plain replacement is exact.
        return sql if self._placeholder == "?" else sql.replace("%", "%%").replace("?", self._placeholder)


class Store:
    """A database for one or more consumers. `transaction()` is the unit of work: all or nothing.

    Thread-safe (a lock around each transaction), so the suppression HTTP endpoint can read
    through it from Starlette's thread pool.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self.kind, self._connection = _connect(url)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            if isinstance(self._connection, sqlite3.Connection):
                yield from _sqlite_transaction(self._connection)
            else:
                with self._connection.transaction(), self._connection.cursor() as cursor:
                    yield _Work(cursor, "%s")

    def migrate(self, component: str, steps: Sequence[str]) -> int:
        """Apply `steps[version:]` for `component`, where `version` is how many it had; the new version."""
        with self.transaction() as work:
            if self.kind == "postgresql":
                work.rows("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            work.execute(SCHEMA_VERSION_TABLE)
            found = work.rows("SELECT version FROM schema_version WHERE component = ?", (component,))
            version = int(found[0][0]) if found else 0
            if version > len(steps):
                raise ConfigError(f"{self.url}: {component} schema is at version {version}, newer than this release")
            for step in steps[version:]:
                work.execute(step)
            work.execute(
                "INSERT INTO schema_version (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, len(steps)),
            )
        return len(steps)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str) -> Store:
    """The store at `url`; ConfigError if the URL is not one we know or the database cannot be reached."""
    try:
        return Store(url)
    except (sqlite3.Error, psycopg.Error, OSError) as error:
        raise ConfigError(f"store {redacted(url)}: {error}".strip()) from None


def _connect(url: str) -> tuple[str, sqlite3.Connection | psycopg.Connection[Any]]:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we BEGIN and COMMIT ourselves, the sqlite3 module's implicit transactions are off.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MILLISECONDS}")
        connection.execute("PRAGMA journal_mode = WAL")  # readers (the HTTP endpoint) do not block the writer
        return "sqlite", connection
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", psycopg.connect(url, autocommit=True, connect_timeout=10)
    raise ConfigError(f"store {redacted(url)}: use sqlite:///path/file.db or postgresql://user@host:port/db")


def _sqlite_transaction(connection: sqlite3.Connection) -> Iterator[Transaction]:
    # IMMEDIATE takes the write lock at the start, so two writers wait (busy_timeout) instead of deadlocking.
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield _Work(connection.cursor(), "?")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
