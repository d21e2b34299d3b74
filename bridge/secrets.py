"""Secrets from mounted files: `${file:/path}`, re-read when the file changes, as Kubernetes rotates a Secret.

Any string value of the configuration may be `${file:/path}` (or contain it): the file's content,
its trailing newline stripped, read once at start-up. A webhook source's `secrets` entries and
`kafka.sasl.password` keep the reference instead (`FileSecret`): on use, at most once a second,
the file's identity (inode, size, mtime) is compared, and a changed file is read again. So a
rotated secret takes effect without a restart. Replace such files whole (write elsewhere, rename
over), as Kubernetes does with its `..data` symlink: a half-written file could be read.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable

from pydantic import SecretStr

log = logging.getLogger(__name__)

FILE_REFERENCE = re.compile(r"\$\{file:([^}]+)\}")
# How often a file-backed secret may look at its file: a stat per second, not per request.
CHECK_SECONDS = 1.0
Stamp = tuple[int, int, int, int]


def read_secret_file(path: str) -> str:
    """The file's content without its trailing newline; ValueError naming the file if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def file_path(value: str) -> str | None:
    """The path of a value that is exactly one `${file:/path}` reference, else None."""
    found = FILE_REFERENCE.fullmatch(value.strip())
    return found.group(1).strip() if found else None


def as_file_secret(value: object) -> object:
    """A pydantic `before` validator's step: `${file:/path}` becomes a FileSecret, anything else is left."""
    if isinstance(value, str) and (path := file_path(value)) is not None:
        return FileSecret(path)
    return value


def lines(secret: SecretStr) -> list[str]:
    """A file-backed secret's non-empty lines (several secrets at once during a rotation); a literal: itself."""
    value = secret.get_secret_value()
    if not isinstance(secret, FileSecret):
        return [value]
    return [line.strip() for line in value.splitlines() if line.strip()]


class FileSecret(SecretStr):
    """A SecretStr whose value is a file's content, read again when the file changes.

    `get_secret_value()` looks at the file at most once every CHECK_SECONDS. A file that became
    unreadable or empty keeps the last value it had (logged): a mount being replaced must not
    lock every sender out. The clock is injected for tests.
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = _stamp_or_raise(path)
        value = read_secret_file(path)
        if not value.strip():
            raise ValueError(f"{path} is empty")
        super().__init__(value)
        self._checked = clock()
        self._complaint: str | None = None

    def get_secret_value(self) -> str:
        if self._clock() - self._checked >= CHECK_SECONDS:
            with self._lock:
                self._refresh()
        return self._secret_value

    def _refresh(self) -> None:
        self._checked = self._clock()
        try:
            stamp = _stamp_or_raise(self.path)
            if stamp == self._stamp:
                return
            value = read_secret_file(self.path)
        except ValueError as error:
            self._complain(f"secret file {self.path} cannot be read ({error}); keeping its last value")
            return
        if not value.strip():
            self._complain(f"secret file {self.path} is empty; keeping its last value")
            return
        self._stamp, self._secret_value, self._complaint = stamp, value, None
        log.info("secret file %s changed: its new value is in use", self.path)

    def _complain(self, message: str) -> None:
        if message != self._complaint:  # once per new problem, not once a second
            log.error("%s", message)
            self._complaint = message

    def __repr__(self) -> str:
        return f"FileSecret({self.path!r})"


def _stamp(path: str) -> Stamp:
    info = os.stat(path)  # follows symlinks: Kubernetes swaps the `..data` link, the inode changes
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _stamp_or_raise(path: str) -> Stamp:
    try:
        return _stamp(path)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
