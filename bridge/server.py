"""The HTTP server: uvicorn, run with the bridge's settings."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from bridge.settings import ServerSettings


def serve(
    app: ASGIApp,
    settings: ServerSettings,
    host: str,
    port: int,
    log_level: str,
    on_refused: Callable[[str], None] = lambda reason: None,
) -> None:
    """Serve `app` until SIGINT/SIGTERM. `on_refused(reason)` is told of every connection or request the
    server's limits cut off."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        log_level=log_level,
        proxy_headers=False,
    )
