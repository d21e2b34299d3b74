"""Reference consumers of the bridge's topics: suppression, analytics, billing (README, "Downstream consumers")."""

from __future__ import annotations

from collections.abc import Callable

from bridge.consumers.analytics import Analytics
from bridge.consumers.billing import Billing
from bridge.consumers.framework import Consumer
from bridge.consumers.suppression import Suppression

# Name → factory: `bridge consumer run NAME` builds a fresh one per run, nothing is shared between runs.
CONSUMERS: dict[str, Callable[[], Consumer]] = {"suppression": Suppression, "analytics": Analytics, "billing": Billing}
