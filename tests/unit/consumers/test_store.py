"""The consumers' store on SQLite and a real PostgreSQL: migrations, transactions, one SQL for both."""

from __future__ import annotations

import pytest

from bridge.consumers.store import Store, open_store, redacted
from bridge.errors import ConfigError
from tests.support.consumers import rows

STEPS = ("CREATE TABLE things (name TEXT PRIMARY KEY, n BIGINT NOT NULL)", "CREATE INDEX things_n ON things (n)")


def test_migrations_run_once_and_record_their_version(store: Store) -> None:
    assert store.migrate("things", STEPS[:1]) == 1
    assert store.migrate("things", STEPS[:1]) == 1  # again on the next start: nothing to do
    assert store.migrate("things", STEPS) == 2  # a release with one more step applies only that one
    assert rows(store, "SELECT component, version FROM schema_version") == [("things", 2)]


def test_a_store_newer_than_the_release_is_refused(store: Store) -> None:
    store.migrate("things", STEPS)
    with pytest.raises(ConfigError, match="things schema is at version 2, newer than this release"):
        store.migrate("things", STEPS[:1])


def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    store.migrate("things", STEPS)
    with pytest.raises(RuntimeError), store.transaction() as work:
        work.execute("INSERT INTO things (name, n) VALUES (?, ?)", ("a", 1))
        raise RuntimeError("a bug half-way through a batch")
    assert rows(store, "SELECT name FROM things") == []


def test_upserts_and_conflicts_count_rows_the_same_on_both(store: Store) -> None:
    store.migrate("things", STEPS)
    insert = "INSERT INTO things (name, n) VALUES (?, ?) ON CONFLICT DO NOTHING"
    upsert = "INSERT INTO things (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = things.n + excluded.n"
    with store.transaction() as work:
        assert work.execute(insert, ("a", 1)) == 1
        assert work.execute(insert, ("a", 5)) == 0
        work.execute(upsert, ("a", 2))
        assert work.rows("SELECT name, n FROM things WHERE n > ? AND name LIKE '%'", (0,)) == [("a", 3)]


def test_an_unknown_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"use sqlite:///path/file\.db or postgresql://"):
        open_store("mysql://db/x")


def test_an_unreachable_postgresql_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        open_store("postgresql://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(raised.value)
    assert "postgresql://u:***@127.0.0.1:1/db" in str(raised.value)


def test_redacted_leaves_urls_without_a_password_alone() -> None:
    assert redacted("sqlite:///x.db") == "sqlite:///x.db"
