"""`bridge serve --workers N` without a broker: the per-worker settings, a worker's liveness watch, and the
supervisor's start-up failures, restarts, backoff and stop, run on a trivial worker in a real process tree."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.config import Config

from bridge import config, server, workers
from bridge.cli import EXIT_CONFIG, main, per_worker
from bridge.server import (
    EXIT_SHUTDOWN_CUT,
    EXIT_STARTUP_FAILED,
    EXIT_WORKER_FAILED,
    WATCH_FAILURES,
    WATCH_TICKS,
    DrainingServer,
)
from bridge.workers import RESTART_MAX_SECONDS, RESTART_MIN_SECONDS, RESTART_RESET_SECONDS, liveness
from tests.support.fakes import MINIMAL_YAML
from tests.support.stack import free_port

SOURCES = """
sources:
  - {name: limited, provider: lettermint, secrets: ["whsec_x"], rate_limit: {per_second: 10, burst: 5}}
  - {name: free, provider: lettermint, secrets: ["whsec_y"]}
"""


def settings_with_sources() -> config.Settings:
    head = MINIMAL_YAML.split("sources:")[0]
    return config.parse(head + SOURCES, environ={})


def test_each_worker_gets_its_share_of_every_rate_limit() -> None:
    settings = settings_with_sources()
    mine = per_worker(settings, 3)
    limited = mine.source("limited")
    assert limited is not None and limited.rate_limit is not None
    assert limited.rate_limit.per_second == pytest.approx(10 / 3)
    assert limited.rate_limit.burst == 2  # rounded up: never below one request
    free = mine.source("free")
    assert free is not None and free.rate_limit is None
    assert mine.server == settings.server and mine.kafka == settings.kafka
    assert per_worker(settings, 1) is settings
    original = settings.source("limited")
    assert original is not None and original.rate_limit is not None and original.rate_limit.per_second == 10


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exit_:
            main(["--config", "unused.yaml", "serve", "--workers", bad])
        assert exit_.value.code == EXIT_CONFIG
        assert "--workers" in capsys.readouterr().err


def test_server_workers_is_a_setting_with_the_cli_over_it() -> None:
    assert config.parse(MINIMAL_YAML, environ={}).server.workers == 1
    head, rest = MINIMAL_YAML.split("sources:")
    assert config.parse(head + "server: {workers: 4}\nsources:" + rest, environ={}).server.workers == 4


def health_app(answers: list[int]) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        status = answers.pop(0)
        if status == 0:
            raise RuntimeError("boom")
        return JSONResponse({"status": "ok" if status == 200 else "failed"}, status_code=status)

    return Starlette(routes=[Route("/healthz", healthz)])


def test_liveness_asks_the_app_itself() -> None:
    check = liveness(health_app([200, 503, 0]))

    async def ask() -> list[str | None]:
        return [await check() for _ in range(3)]

    fine, failed, raised = asyncio.run(ask())
    assert fine is None
    assert failed == '/healthz answered 503 {"status":"failed"}'
    assert raised == "/healthz raised RuntimeError"  # an error is a failed answer, as a 500 would be


def test_the_watch_stops_the_server_after_three_failures_in_a_row() -> None:
    told: list[bool] = []
    reasons = iter([None, "bad", None, "bad", "bad", "bad", "bad"])

    async def watch() -> str | None:
        return next(reasons)

    app = health_app([])
    uvicorn_config = Config(app)
    uvicorn_config.load()
    draining = DrainingServer(uvicorn_config, 5, lambda: told.append(True), watch=watch)

    async def ticks() -> list[bool]:
        stopped = []
        for turn in range(6):
            stopped.append(await draining.on_tick(turn * WATCH_TICKS))
        return stopped

    assert asyncio.run(ticks()) == [False, False, False, False, False, True]
    assert WATCH_FAILURES == 3
    assert draining.failed == "bad" and draining.should_exit and told == [True]


def test_a_signal_that_came_before_the_server_is_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "early_signals", [signal.SIGTERM])
    told: list[bool] = []
    draining = DrainingServer(Config(health_app([])), 5, lambda: told.append(True))
    with draining.capture_signals():
        assert draining.should_exit and told == [True]
    assert server.early_signals == []


def test_the_restart_delay_doubles_for_workers_that_die_young_and_resets() -> None:
    supervisor = workers._Supervisor(lambda listener, started: None, (socket.AF_INET, ("127.0.0.1", 1)), 1, 1.0)
    os.close(supervisor._ready_r)
    os.close(supervisor._ready_w)
    slot = workers._Slot(1)
    delays = []
    for _ in range(7):
        supervisor._schedule(slot, 0.5, "worker 1 died")
        delays.append(slot.delay)
    assert delays == [RESTART_MIN_SECONDS, 2, 4, 8, 16, RESTART_MAX_SECONDS, RESTART_MAX_SECONDS]
    supervisor._schedule(slot, RESTART_RESET_SECONDS, "worker 1 died")
    assert slot.delay == RESTART_MIN_SECONDS
    assert slot.due is not None and slot.due > time.monotonic()
    assert workers._how(-9) == "was killed by SIGKILL"
    assert "Kafka producer" in workers._how(EXIT_WORKER_FAILED)


# The supervisor itself, on a worker that needs no app: it says it serves, then waits for SIGTERM.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from bridge import logs, server, workers
    from bridge.settings import ServerSettings

    mode, port, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    logs.configure("INFO", "text")

    def first(name):
        try:
            os.close(os.open(folder / name, os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False

    def work(listener, started):
        if mode == "startup-fails" and first("failed"):
            raise SystemExit(3)
        started()
        if mode == "keeps-dying" or (mode == "dies" and first("died")):
            time.sleep(1.0)  # after the other worker said it serves: a restart, not a failed start-up
            raise SystemExit(1)
        while not server.early_signals:
            time.sleep(0.01)
        if mode == "stubborn":  # ignores the signal: the supervisor must kill it
            time.sleep(60)

    workers.supervise(work, ServerSettings(shutdown_timeout_seconds=0.5), "127.0.0.1", port, 2)
    """
)


def supervisor(mode: str, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode, str(free_port()), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], signalled_after: float | None = None, timeout: float = 20) -> str:
    try:
        if signalled_after is not None:
            time.sleep(signalled_after)
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return output


def test_a_worker_failing_its_start_up_stops_the_others_and_exits_3(tmp_path: Path) -> None:
    process = supervisor("startup-fails", tmp_path)
    output = finish(process)
    assert process.returncode == EXIT_STARTUP_FAILED, output
    assert "exited with status 3 (its start-up failed) before every worker was serving: start-up failed" in output
    assert "every worker stopped (exit status 3)" in output


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    process = supervisor("serves", tmp_path)
    output = finish(process, signalled_after=2.0)
    assert process.returncode == 0, output
    assert "all 2 workers serving" in output
    assert output.count("drained and exited") == 2


def test_a_worker_that_dies_is_replaced_after_a_second(tmp_path: Path) -> None:
    process = supervisor("dies", tmp_path)
    output = finish(process, signalled_after=3.5)
    assert process.returncode == 0, output
    assert "exited with status 1 after" in output and "starting another in 1 s" in output
    assert output.count("starting: pid") == 3
    assert output.count("drained and exited") == 2


def test_replacements_that_keep_dying_back_off(tmp_path: Path) -> None:
    process = supervisor("keeps-dying", tmp_path)
    output = finish(process, signalled_after=4.5)
    # Each lives 1 s: dies at 1, is restarted at 2, dies at 3, is due again at 5 (after the signal).
    assert process.returncode == 0, output
    assert output.count("starting another in 1 s") == 2
    assert output.count("starting another in 2 s") == 2
    assert output.count("starting: pid") == 4


def test_a_worker_that_ignores_sigterm_is_killed_and_the_exit_is_1(tmp_path: Path) -> None:
    process = supervisor("stubborn", tmp_path)
    started = time.monotonic()
    output = finish(process, signalled_after=2.0)
    assert process.returncode == EXIT_SHUTDOWN_CUT, output
    assert "killed" in output
    assert time.monotonic() - started < 2.0 + 0.5 + 1 + 1 + 3


def test_no_worker_outlives_a_supervisor_killed_with_sigkill(tmp_path: Path) -> None:
    process = supervisor("serves", tmp_path)
    try:
        deadline = time.monotonic() + 20
        workers: list[int] = []
        while len(workers) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
            workers = [
                int(entry.name)
                for entry in Path("/proc").iterdir()
                if entry.name.isdigit() and _parent(entry) == process.pid
            ]
        process.kill()  # PDEATHSIG: each worker gets SIGTERM and drains
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()


def _parent(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
