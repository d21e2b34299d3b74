"""Duplicate deliveries: concurrent copies wait for the first one's outcome, recent ones are answered at once.

Providers redeliver (a lost answer, a retry schedule, "at least once" by design). Within one
process, the same (source, event ids) is published once while it is remembered; other replicas,
restarts and a 503 followed by a retry can still publish it again, so consumers keep
deduplicating on the `event_id` header.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

Key = Hashable


class RecentDeliveries:
    """Keys acknowledged in the last `ttl_seconds` (at most `max_entries`, oldest forgotten first),
    and the keys in flight now."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._done: OrderedDict[Key, float] = OrderedDict()  # key -> when it is forgotten
        self._in_flight: dict[Key, asyncio.Future[bool]] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def claim(self, key: Key) -> bool:
        """True: the caller publishes `key` and must call `settle`. False: `key` is a duplicate.

        A caller that finds `key` in flight waits for that outcome: acknowledged means a duplicate;
        failed means it tries itself.
        """
        while True:
            if self._seen(key):
                return False
            running = self._in_flight.get(key)
            if running is None:
                self._in_flight[key] = asyncio.get_running_loop().create_future()
                return True
            await asyncio.shield(running)

    def settle(self, key: Key, acknowledged: bool) -> None:
        """The outcome of a claimed key; waiters wake up and look again."""
        running = self._in_flight.pop(key, None)
        if acknowledged and self._ttl > 0:
            self._done[key] = self._clock() + self._ttl
            self._done.move_to_end(key)
            while len(self._done) > self._max:
                self._done.popitem(last=False)
        if running is not None and not running.done():
            running.set_result(acknowledged)

    def _seen(self, key: Key) -> bool:
        expires = self._done.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._done[key]
            return False
        return True
