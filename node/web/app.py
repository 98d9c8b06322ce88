"""The web app mounted under `/app/` on the API listener, and its session routes.

The session's own routes (login, logout, the live event stream) are here; what
every page shares (`WebApp`) is in `node.web.pages`, the member's pages and
actions in `node.web.routes`.

Why this stack: Jinja2 pages rendered on the server (autoescape on) and one
small module of our own (`static/app.js`, no framework) for the live parts. The
node already holds every answer; rendering HTML next to it needs no client-side
state, no build step and nothing vendored, works without script (forms post and
redirect), and keeps every string from peers on the escaped path. Live updates
are server-sent events from `Node.changes()`: the page's script refetches the
page and swaps the regions marked `data-live` (parsed as HTML from our own
origin, never built from strings in script).

Every route but the login page needs a session (see `node.web.security`), and
every action (a POST) the session's CSRF token from our own origin. Neither is a
line in each route: pages hang from a router whose dependency,
`WebApp.require_session`, refuses a browser without a session, and actions from
one whose dependency, `checked_form`, also checks the form, so a new route cannot
forget them (tests/web/test_guard.py walks them all). Peers' strings reach the
templates as data only.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from node.service import Node
from node.web.pages import PREFIX, WebApp, checked_form
from node.web.routes import add_actions, add_pages
from node.web.security import SESSION_COOKIE, LoggedOut, Logins, Refused, WebGuard

__all__ = ["add_web_app"]


def add_web_app(app: FastAPI, node: Node, guarded: list[Any], logins: Logins | None = None) -> None:
    """Mount the web app on `app` under `/app/`, and the bearer-token route that
    makes its one-time login links (`POST /v1/login-links`)."""
    web = WebApp(node, logins or Logins())
    app.add_middleware(WebGuard, prefix=PREFIX)

    @app.post("/v1/login-links", dependencies=guarded, tags=["node"], status_code=201)
    async def login_link() -> dict[str, str]:
        """A one-time login link for the web app (five minutes, one use): `trustnode open`."""
        return {"path": f"{PREFIX}/login?secret={web.logins.new_secret()}"}

    app.state.web = web
    app.add_exception_handler(LoggedOut, web.refuse_logged_out)
    app.add_exception_handler(Refused, web.refuse)
    public = APIRouter(prefix=PREFIX, include_in_schema=False)
    _add_login(public, web)
    app.include_router(public)
    # Everything else needs a session, and an action its form checked: the checks are
    # the routers', not each route's.
    pages = APIRouter(
        prefix=PREFIX, include_in_schema=False, dependencies=[Depends(web.require_session)]
    )
    _add_events(pages, web)
    add_pages(pages, web)
    app.include_router(pages)
    actions = APIRouter(
        prefix=PREFIX, include_in_schema=False, dependencies=[Depends(checked_form)]
    )
    _add_logout(actions, web)
    add_actions(actions, web)
    app.include_router(actions)
    static = resources.files("node.web") / "static"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(static)), name="web-static")


def _add_login(router: APIRouter, web: WebApp) -> None:
    @router.get("/login")
    async def login(request: Request, secret: str = "") -> Response:
        session_id = web.logins.redeem(secret)
        if session_id is None:
            return web.page(request, "login.html", status=403, spent=True)
        answer = RedirectResponse(f"{PREFIX}/", status_code=303)
        answer.set_cookie(
            SESSION_COOKIE, session_id, httponly=True, samesite="strict", path=PREFIX,
            secure=False,  # plain http on loopback; the cookie never leaves this machine
        )  # fmt: skip
        return answer


def _add_logout(router: APIRouter, web: WebApp) -> None:
    @router.post("/logout")
    async def logout(request: Request) -> Response:  # the router checked its form
        web.logins.end(request.cookies.get(SESSION_COOKIE))
        answer = web.page(request, "login.html", status=200, bye=True)
        answer.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return answer


def _add_events(router: APIRouter, web: WebApp) -> None:
    @router.get("/events")
    async def events(request: Request, after: int = 0) -> Response:
        """Server-sent events: one `change` event per stored attestation after `after`."""
        return StreamingResponse(
            web.event_stream(after),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )
