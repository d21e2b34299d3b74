"""A real PostgreSQL server for the consumer store tests: initdb + pg_ctl on a free port in a temporary folder.

Bound to 127.0.0.1 only, trust authentication (nothing else can reach it), fsync off (a test server).
Stopped by the PID in its postmaster.pid. Debian keeps the binaries in /usr/lib/postgresql/<major>/bin,
off PATH; `.ci/run` installs the `postgresql` package where they are missing. initdb refuses to run as
root, so as root the server runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.stack import free_port

USER = "postgres"
STOP_SECONDS = 30


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL: each test gets its own."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    return found[-1].parent if found else None


@contextlib.contextmanager
def postgres_server(bin_dir: Path) -> Iterator[Postgres]:
    # Its own folder in the system temp dir (world-traversable), not pytest's 0700 one, which the
    # postgres user could not enter; removed at the end.
    folder = Path(tempfile.mkdtemp(prefix="bridge-test-postgres-"))
    try:
        with _server(folder, bin_dir) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _server(folder: Path, bin_dir: Path) -> Iterator[Postgres]:
    port = free_port()
    data, run = folder / "data", folder / "run"
    run.mkdir(parents=True)
    as_user = _as_user(folder)
    _run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"])
    options = f"-p {port} -k {run} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    log = folder / "postgres.log"
    _run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"])
    pid = int((data / "postmaster.pid").read_text().split()[0])
    try:
        yield Postgres("127.0.0.1", port)
    finally:
        _stop(pid)


def _as_user(folder: Path) -> list[str]:
    """As root: `runuser -u postgres --`, the folder handed to that user; otherwise nothing."""
    if os.geteuid() != 0:
        return []
    account = pwd.getpwnam(USER)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", USER, "--"]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _stop(pid: int) -> None:
    """SIGINT is PostgreSQL's fast shutdown; SIGKILL if it is still there after STOP_SECONDS."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (no reaping parent, as in some containers) has stopped.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")
