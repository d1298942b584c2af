"""The ASGI application ``mailfleet run`` serves on loopback: ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mailfleet.api.metrics import gather_metrics, render
from mailfleet.clock import Clock
from mailfleet.engine.faults import FaultLog
from mailfleet.store import Database

log = logging.getLogger(__name__)


def create_app(db: Database, clock: Clock, faults: FaultLog | None = None) -> Starlette:
    """An app whose ``GET /metrics`` reads the store at scrape time (and ``faults``)."""

    async def metrics(request: Request) -> Response:
        try:
            gathered = await gather_metrics(db, clock.now())
            gathered.faults = faults.snapshot() if faults is not None else {}
            body = render(gathered)
        except SQLAlchemyError as exc:  # the scrape fails visibly; the process carries on
            log.warning("metrics: the store could not be read: %s", exc)
            return PlainTextResponse(f"store unavailable: {type(exc).__name__}\n", 503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[Route("/metrics", metrics, methods=["GET"]), Route("/healthz", healthz)]
    )
