"""What every page of the web app shares: one `WebApp` per node.

It finds a request's session, renders a template with the session's notices and
CSRF token, provides the two dependencies the routers hang on every route
(`WebApp.require_session`, and `checked_form` for actions; see `node.web.app`),
and feeds the live event streams. The routes themselves are elsewhere: the
session's own in `node.web.app`, the member's pages and actions in
`node.web.routes`. Peers' strings reach the templates as data only.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import trio
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from node.api.naming import names_of
from node.api.views import attestation_view
from node.service import Node
from node.web.security import SESSION_COOKIE, LoggedOut, Logins, PostedForm, Refused, Session
from node.web.text import visible
from protocol.identity import encode_identity_text

__all__ = ["PREFIX", "Posted", "WebApp", "checked_form"]

PREFIX = "/app"
RECENT = 30
# Each open event stream holds one of the API's requests in flight (node.api.limits):
# past this many, the oldest is ended (its tab reconnects), so tabs cannot starve it.
MAX_STREAMS = 8


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("node.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = visible
    env.filters["pct"] = lambda v: f"{float(v):.0%}"
    env.filters["score"] = lambda v: f"{float(v):.3f}"
    env.filters["q"] = lambda v: quote(str(v), safe="")
    env.filters["when"] = _when
    return env


def _when(ms: int) -> str:
    """A statement's time in UTC; a signer's time past the year 9999 (up to 2^53 - 1
    ms, SPEC §2) is said as such, not a 500."""
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):
        return "after 9999"


class _Stream:
    """One open event stream, which a newer one may end."""

    def __init__(self) -> None:
        self.ended = False
        self.waiting: trio.CancelScope | None = None

    def end(self) -> None:
        self.ended = True
        if self.waiting is not None:
            self.waiting.cancel()


class WebApp:
    """The pages of one node, for its member's browser."""

    def __init__(self, node: Node, logins: Logins) -> None:
        self.node = node
        self.logins = logins
        self.env = _templates()
        self.me = encode_identity_text(node.identity)
        self.streams: list[_Stream] = []

    # -- plumbing ------------------------------------------------------------------------

    def session_of(self, request: Request) -> tuple[str, Session] | None:
        sid = request.cookies.get(SESSION_COOKIE)
        session = self.logins.session(sid)
        return None if session is None or sid is None else (sid, session)

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        found = self.session_of(request)
        notices: list[tuple[str, str]] = []
        csrf = ""
        if found is not None:
            notices, found[1].notices = found[1].notices, []
            csrf = found[1].csrf
        html = self.env.get_template(template).render(
            csrf=csrf, notices=notices, me=self.me, prefix=PREFIX, path=request.url.path,
            **values,
        )  # fmt: skip
        return HTMLResponse(html, status_code=status)

    def require_session(self, request: Request) -> Session:
        """The request's live session (a dependency of every route but the login page).

        Raises:
            LoggedOut: the request has no live session (`refuse_logged_out` answers).
        """
        found = self.session_of(request)
        if found is None:
            raise LoggedOut
        return found[1]

    async def refuse_logged_out(self, request: Request, exc: Exception) -> Response:
        """A page asks to log in (401); an action, which must never run, is refused (403)."""
        if request.method in {"GET", "HEAD"}:
            return self.page(request, "login.html", status=401)
        return self.page(request, "refused.html", status=403, why="You are not logged in.")

    async def posted_form(self, request: Request) -> PostedForm:
        """The posted form of a live session, from our origin, with its CSRF token.

        Raises:
            LoggedOut: no live session.
            Refused: another origin, or a missing or stale token (`refuse` answers 403).
        """
        session = self.require_session(request)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"http://{request.headers.get('host', '')}":
            raise Refused("Cross-site request.")
        body = (await request.body()).decode("utf-8", errors="replace")
        fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        if not hmac.compare_digest(fields.get("csrf", ""), session.csrf):
            raise Refused("Missing or stale form token.")
        return PostedForm(session, fields)

    async def refuse(self, request: Request, exc: Exception) -> Response:
        """The refused page for an action checked and refused (`Refused`)."""
        assert isinstance(exc, Refused)
        return self.page(request, "refused.html", status=403, why=exc.why)

    async def names(self, identities: list[str]) -> dict[str, Any]:
        return dict(await names_of(self.node, identities))

    async def recent(self) -> tuple[list[Any], int]:
        """The latest changes (about `RECENT`) and the cursor after them, for the live feed.

        The store's count says where to start and, while nothing was pruned (no
        gaps in `seq`), where the end is; past gaps we read until the feed waits
        for news (it never ends by itself), at most half a second."""
        stored = (await self.node.status()).attestations
        cursor = max(0, stored - RECENT)
        found: list[Any] = []
        if stored == 0:
            return found, cursor
        with trio.move_on_after(0.5):  # only when pruning left gaps in the numbering
            async with contextlib.aclosing(self.node.changes(cursor=cursor)) as feed:
                async for change in feed:
                    found.append(change)
                    cursor = change.seq
                    if change.seq >= stored:  # the last one (seq counts from 1)
                        break
        return found[-RECENT:][::-1], cursor

    async def event_stream(self, after: int) -> AsyncIterator[bytes]:
        """A `change` event for each batch of attestations stored after `after`, a
        comment every 15 s (so that a dead connection is noticed); ended once
        `MAX_STREAMS` newer streams are open.

        Each wait uses a fresh `Node.changes()` feed, closed before anything is
        sent: a timeout or an eviction cancels the wait, and a cancelled async
        generator cannot be resumed (nor may a cancel scope span a `yield`)."""
        yield b"retry: 2000\n\n"
        mine = _Stream()
        self.streams.append(mine)
        while len(self.streams) > MAX_STREAMS:
            self.streams.pop(0).end()
        cursor = after
        try:
            while True:
                batch = await self._next_batch(cursor, mine)
                if mine.ended:  # set by a newer stream while we waited
                    return
                if not batch:
                    yield b": keep-alive\n\n"
                    continue
                cursor = batch[-1].seq
                data = json.dumps({"seq": cursor, "count": len(batch)})
                yield f"id: {cursor}\nevent: change\ndata: {data}\n\n".encode()
        finally:
            if mine in self.streams:
                self.streams.remove(mine)

    async def _next_batch(self, cursor: int, stream: _Stream) -> list[Any]:
        """The changes after `cursor` once there are any (empty after 15 s)."""
        batch: list[Any] = []
        async with contextlib.aclosing(self.node.changes(cursor=cursor)) as feed:
            with trio.move_on_after(15) as waiting:
                stream.waiting = waiting
                batch.append(await feed.__anext__())
            stream.waiting = None
            if batch:  # what else is already stored: the feed yields it at once
                with trio.move_on_after(0.05):
                    # A loop, not a comprehension: it keeps what came before the timeout.
                    async for change in feed:
                        batch.append(change)  # noqa: PERF401
        return batch

    async def views(self, attestations: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        views = [attestation_view(a) for a in attestations]
        names = await self.names([t for v in views for t in (v.issuer, v.subject)])
        return views, names


async def checked_form(request: Request) -> PostedForm:
    """The dependency of every action: `WebApp.posted_form` of the app's web app."""
    web = request.app.state.web
    assert isinstance(web, WebApp)
    return await web.posted_form(request)


# What an action takes: FastAPI computes it once a request (the router's own check).
Posted = Annotated[PostedForm, Depends(checked_form)]
