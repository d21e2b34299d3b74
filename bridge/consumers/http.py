"""`GET /suppressions/{address}`: the suppression store, read-only over HTTP (`consumer run suppression --http-port`).

Same conventions as the bridge: JSON answers, errors as `{"error": <code>, "detail": <why>}`.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.consumers.framework import normalise_address
from bridge.consumers.store import Store
from bridge.consumers.suppression import lookup
from bridge.webhooks import JSONAnswer

START_TIMEOUT_SECONDS = 10.0


def create_app(store: Store) -> Starlette:
    async def suppression(request: Request) -> Response:
        address = request.path_params["address"]
        # The store's calls block: off the event loop, as Starlette runs sync endpoints.
        found = await run_in_threadpool(_find, store, address)
        if found is None:
            detail = f"{normalise_address(address)} is not suppressed"
            return JSONAnswer({"error": "not_suppressed", "detail": detail}, status_code=404)
        return JSONAnswer(found)

    async def healthz(request: Request) -> Response:
        return JSONAnswer({"status": "ok"})

    async def http_error(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        headers = error.headers if isinstance(error, HTTPException) else None
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONAnswer({"error": code, "detail": str(getattr(error, "detail", ""))}, status, headers=headers)

    return Starlette(
        routes=[
            Route("/suppressions/{address}", suppression, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def _find(store: Store, address: str) -> dict[str, object] | None:
    with store.transaction() as work:
        return lookup(work, address)


class Server:
    """uvicorn in a thread beside the consuming loop; the loop's signal handling stays the process's."""

    def __init__(self, store: Store, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(store), host=host, port=port, lifespan="off", access_log=False, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="suppression-http", daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(
                    f"the HTTP endpoint did not start on {self._server.config.host}:{self._server.config.port}"
                )
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_SECONDS)
