"""The public endpoint: one-click unsubscribe (RFC 8058) and its confirmation page.

It listens on its own socket (``MAILFLEET_PUBLIC_BIND``), apart from ``/metrics``,
and is meant to sit behind the user's TLS reverse proxy at ``MAILFLEET_PUBLIC_URL``:

* ``POST /unsubscribe/{token}`` with the body ``List-Unsubscribe=One-Click``
  (form-encoded or multipart, no cookie, no CSRF token: mailbox providers send it
  from their servers) unsubscribes and answers 200;
* ``GET /unsubscribe/{token}`` (a person clicking the link) shows a page whose button
  POSTs ``confirm=yes`` back; a GET alone never unsubscribes, because link scanners
  fetch every URL of a message;
* a tampered or malformed token gets a 400 page and changes nothing.

The route only parses and renders: the work is :mod:`mailfleet.services.unsubscribe`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from mailfleet.clock import Clock
from mailfleet.services import unsubscribe as service
from mailfleet.services.unsubscribe import Source
from mailfleet.store import Database

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_pages = Environment(
    loader=PackageLoader("mailfleet.api", "templates"),
    autoescape=select_autoescape(["html"]),
)


def masked(address: str) -> str:
    """``j***@example.com``: enough for the person to recognise, little for anyone else."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _page(status: int, title: str, message: str, *, confirm: bool = False) -> HTMLResponse:
    body = _pages.get_template("unsubscribe.html").render(
        title=title, message=message, confirm=confirm
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _refused(exc: Exception) -> HTMLResponse:
    """The page for a token that does not work, or a store that cannot answer now."""
    # The recipient reads the page; the technical reason is for the operator's log.
    if isinstance(exc, service.TokenError):
        log.info("public: refused an unsubscribe link: %s", exc)
        return _page(
            400,
            "This link does not work",
            "The link is incomplete or was changed, so we cannot tell whom it is for. "
            "Nothing was changed. To unsubscribe, reply to our message with the word "
            "unsubscribe.",
        )
    if isinstance(exc, service.UnknownContact):
        log.info("public: an unsubscribe link for a removed contact: %s", exc)
        return _page(
            404,
            "Nothing to unsubscribe",
            "We no longer hold this address. Nothing was changed.",
        )
    log.error("public: the store failed: %s", exc, exc_info=exc)
    return _page(503, "Please try again", "We could not handle this link just now.")


async def _source(request: Request) -> Source | None:
    """Which door a POST came through, from its form body; None when it is neither."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return None
    try:
        form = await request.form(max_files=0, max_fields=8, max_part_size=MAX_BODY)
    except (HTTPException, MultiPartException, UnicodeDecodeError, ValueError) as exc:
        log.info("public: unreadable unsubscribe body: %s", exc)
        return None
    if str(form.get("List-Unsubscribe", "")).strip().lower() == "one-click":
        return "one-click"
    if str(form.get("confirm", "")).strip().lower() == "yes":
        return "page"
    return None


def create_public_app(db: Database, clock: Clock, keys: Callable[[], Sequence[bytes]]) -> Starlette:
    """The public app; ``keys`` gives every current unsubscribe-link key, newest first."""

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            target = await service.find_target(db, keys(), token)
        except (service.TokenError, service.UnknownContact, SQLAlchemyError) as exc:
            return _refused(exc)
        if target.suppressed:
            return _page(
                200,
                "You are unsubscribed",
                f"{masked(target.email)} receives no more email from us.",
            )
        return _page(
            200,
            "Unsubscribe?",
            f"Stop all email from us to {masked(target.email)}.",
            confirm=True,
        )

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        source = await _source(request)
        if source is None:
            return _page(
                400,
                "This request does not work",
                "A one-click unsubscribe must POST the body List-Unsubscribe=One-Click. "
                "Nothing was changed.",
            )
        try:
            done = await service.unsubscribe_token(db, keys(), token, source=source, at=clock.now())
        except service.TokenError as exc:
            return _page(400, "This link does not work", f"{exc}. Nothing was changed.")
        except service.UnknownContact as exc:
            return _page(404, "Nothing to unsubscribe", f"{exc}. Nothing was changed.")
        except SQLAlchemyError:
            log.exception("public: the unsubscribe could not be written")
            return _page(503, "Please try again", "We could not unsubscribe you just now.")
        log.info(
            "public: %s unsubscribed (%s), %d sequence(s) ended",
            masked(done.email),
            source,
            len(done.stopped),
        )
        return _page(
            200, "You are unsubscribed", f"{masked(done.email)} receives no more email from us."
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/unsubscribe/{token}", show, methods=["GET"]),
            Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
