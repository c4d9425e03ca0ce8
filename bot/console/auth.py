"""Who may use the console, and which of their requests may change anything.

Every console route needs a login (a session cookie from a login link, or CONSOLE_TOKEN as a bearer
token for scripts). Every request that changes state, on any console route present or future, must
also be `application/json`, come from the console's own origin (Origin, else Referer) and, for a
cookie login, carry the session's CSRF token in `X-CSRF-Token`. Anything else is refused with 403
and a reason, stored nowhere, and counted in the bounded refusal log."""
from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bot.console.sessions import ConsoleSessions, Session
from bot.refusals import Refusals, http_refusal
from bot.web_guard import WebGuard

log = logging.getLogger("deputy.console")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
OPEN_PATHS = ("/static/", "/login")
CONSOLE_PATHS = ("/api/", "/static/", "/login")
HOW_TO_LOG_IN = "Open the login link `deputy up` printed, or run `deputy console-link` for a new one."


@dataclass(frozen=True)
class Identity:
    owner: str  # what per-login limits count against: a session's key, or "bearer"
    session: Session | None


IDENTITY = web.RequestKey("identity", Identity)


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConsoleAuth:
    def __init__(self, sessions: ConsoleSessions, guard: WebGuard, refusals: Refusals, cookie_name: str) -> None:
        self.sessions = sessions
        self.guard = guard
        self.refusals = refusals
        self.cookie_name = cookie_name

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not (path == "/" or path.startswith(CONSOLE_PATHS)) or path.startswith(OPEN_PATHS):
            return await handler(request)
        if path == "/" and "token" in request.query:  # links of older releases: /?token=…
            raise web.HTTPSeeOther(f"/login?token={request.query['token']}")
        identity = await self.identify(request)
        try:
            if identity is None:
                raise Refused("not logged in")
            if request.method not in SAFE_METHODS:
                self.check_write(request, identity)
            else:
                self.check_read(request)
        except Refused as err:
            await self.refuse(request, err.reason, status=401 if identity is None else 403)
        request[IDENTITY] = identity  # type: ignore[assignment]
        return await handler(request)

    async def identify(self, request: web.Request) -> Identity | None:
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer ") and self.sessions.bearer_ok(bearer.removeprefix("Bearer ").strip()):
            return Identity(owner="bearer", session=None)
        session = await self.sessions.get(request.cookies.get(self.cookie_name, ""))
        return Identity(owner=session.key, session=session) if session else None

    def check_write(self, request: web.Request, identity: Identity) -> None:
        if request.content_type != "application/json":
            raise Refused("a change must be sent as application/json")
        own = self.guard.origin(request).url
        claimed = request.headers.get("Origin") or _origin_of(request.headers.get("Referer", ""))
        if claimed is None and identity.session is not None:
            raise Refused("a change must say where it comes from (Origin)")
        if claimed is not None and claimed != own:
            raise Refused("a change must come from the console's own page")
        if identity.session is not None:
            given = request.headers.get(CSRF_HEADER, "")
            if not given or not hmac.compare_digest(given.encode(), identity.session.csrf.encode()):
                raise Refused("a change must carry this login's CSRF token")

    def check_read(self, request: web.Request) -> None:
        """A browser names the origin of a cross-origin read (an EventSource or fetch from another page, another
        port of this host included); the console's own page sends none, or its own."""
        claimed = request.headers.get("Origin")
        if claimed is not None and claimed != self.guard.origin(request).url:
            raise Refused("a read must come from the console's own page")

    async def still_valid(self, request: web.Request) -> bool:
        """Whether the login a long-lived request started under still exists (ended sessions end their streams)."""
        identity = request[IDENTITY]
        return identity.session is None or await self.identify(request) is not None

    async def refuse(self, request: web.Request, reason: str, status: int) -> None:
        verdict = await self.refusals.refuse("console", reason, self.guard.origin(request).client_ip)
        body = {"error": reason} if status == 403 else {"error": f"{reason}: {HOW_TO_LOG_IN}"}
        if request.path == "/" and status == 401:
            raise web.HTTPUnauthorized(text=_login_page(), content_type="text/html")
        error = web.HTTPUnauthorized if status == 401 else web.HTTPForbidden
        raise http_refusal(verdict, error, text=json.dumps(body), content_type="application/json")

    async def login(self, request: web.Request) -> web.Response:
        """GET /login?token=…: a valid link opens a session and goes to the console; the token leaves the URL."""
        origin = self.guard.origin(request)
        session_id = await self.sessions.redeem(request.query.get("token", ""))
        if session_id is None:
            verdict = await self.refusals.refuse("console", "bad login link", origin.client_ip)
            raise http_refusal(verdict, web.HTTPForbidden, content_type="text/html",
                               text=_login_page("This login link is not valid any more (each link works once)."))
        response = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
        response.set_cookie(self.cookie_name, session_id, httponly=True, samesite="Strict", path="/",
                            secure=origin.scheme == "https", max_age=self.sessions.session_ttl_s)
        log.info("console: a new login from %s", origin.client_ip)
        return response


def _origin_of(referer: str) -> str | None:
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "null"


def _login_page(problem: str = "You are not logged in.") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Deputy</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body><main class="login">'
        f"<h1>Deputy</h1><p>{problem}</p><p>{HOW_TO_LOG_IN.replace('`', '')}</p></main></body></html>"
    )
