"""Server processes: started, waited for, measured from /proc (CPU and RSS over the process tree), stopped by PID."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_SECONDS = 30.0


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec_fn: the child gets `sig` when the harness dies, even of SIGKILL (Linux PR_SET_PDEATHSIG),
    so that no server outlives a benchmark that was killed. None where there is no prctl."""
    prctl = _prctl()
    if prctl is None:
        return None

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return arm


@functools.cache
def _prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl
    except (OSError, AttributeError):
        return None
    return prctl


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """Direct children of `pid`: /proc/<pid>/task/*/children, else a scan of every process's parent."""
    found: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    try:
        files = [task / "children" for task in tasks.iterdir()]
        if files and all(file.exists() for file in files):
            for file in files:
                with contextlib.suppress(OSError):
                    found += [int(child) for child in file.read_text().split()]
            return found
    except OSError:
        return []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (the workers of `bridge serve --workers N` are its children)."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        if current in pids:
            continue
        pids.append(current)
        queue += children(current)
    return pids


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): state is [0]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of each process (all its threads), summed."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])  # stat fields 14 and 15
    return total / TICKS


def rss_mib(pids: Sequence[int]) -> float:
    """VmRSS summed over the processes."""
    total_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


@dataclass
class Server:
    """A target served as its own process."""

    name: str
    command: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    ready_path: str = "/readyz"
    descendants: dict[int, int | None] = field(default_factory=dict)  # PID: start time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                preexec_fn=die_with_parent(),  # prctl only: safe after fork, and no other thread runs here
            )

    def wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    self.remember_descendants()
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready on {self.url}{self.ready_path}:\n{self.tail()}")
            time.sleep(0.25)

    def remember_descendants(self) -> None:
        self.descendants.update({pid: _started(pid) for pid in tree(self.pid)[1:]})

    def pids(self) -> list[int]:
        pids = tree(self.pid)
        self.descendants.update({pid: _started(pid) for pid in pids[1:] if pid not in self.descendants})
        return pids

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM to the process, wait, SIGKILL after a timeout; then the same for any descendant left."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.remember_descendants()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid, started in sorted(self.descendants.items()):  # workers the parent did not take down with it
            _stop_pid(pid, started)
        return self.process.returncode


def _started(pid: int) -> int | None:
    """The process's start time in ticks since boot (stat field 22): with the PID, it names one process."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def _stop_pid(pid: int, started: int | None) -> None:
    """SIGTERM, then SIGKILL after a timeout, to `pid` while it is still the process that started at `started`."""

    def same() -> bool:
        return started is not None and _started(pid) == started

    for sig, patience in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if not same():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + patience
        while same() and time.monotonic() < deadline:
            with contextlib.suppress(OSError, IndexError):
                if _stat_fields(pid)[0] == "Z":
                    return  # exited: its parent, or init, reaps it
            time.sleep(0.1)
