"""The web app's routes, mounted under `/app/` on the API listener.

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
one whose dependency, `posted_form`, also checks the form, so a new route cannot
forget them (tests/web/test_guard.py walks them all). Peers' strings reach the
templates as data only.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import segno
import trio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from node.api.naming import names_of
from node.api.views import attestation_view, claim_view, explanation_view, rating_view
from node.service import Node
from node.service.invites import refusal_words
from node.web.picture import draw_explanation
from node.web.security import (
    SESSION_COOKIE,
    LoggedOut,
    Logins,
    PostedForm,
    Refused,
    Session,
    WebGuard,
)
from node.web.text import visible
from protocol.errors import TrustnodeError
from protocol.identity import encode_identity_text
from protocol.statement import GENERAL_CONTEXT, Kind

__all__ = ["add_web_app"]

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


async def _posted_form(request: Request) -> PostedForm:
    """The dependency of every action: `WebApp.posted_form` of the app's web app."""
    web = request.app.state.web
    assert isinstance(web, WebApp)
    return await web.posted_form(request)


# What an action takes: FastAPI computes it once a request (the router's own check).
Posted = Annotated[PostedForm, Depends(_posted_form)]


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
    _add_pages(pages, web)
    app.include_router(pages)
    actions = APIRouter(
        prefix=PREFIX, include_in_schema=False, dependencies=[Depends(_posted_form)]
    )
    _add_logout(actions, web)
    _add_actions(actions, web)
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


def _add_pages(router: APIRouter, web: WebApp) -> None:
    node = web.node

    @router.get("/")
    async def home(request: Request) -> Response:
        mine, mine_names = await web.views(await node.attestations(issuer=node.identity))
        about, about_names = await web.views(await node.attestations(subject=node.identity))
        about = [a for a in about if a.issuer != web.me]
        changes, cursor = await web.recent()
        recent, recent_names = await web.views([c.attestation for c in changes])
        names = {**mine_names, **about_names, **recent_names}
        return web.page(
            request, "home.html", mine=mine, about=about, recent=recent, names=names,
            cursor=cursor, my_name=names.get(web.me),
        )  # fmt: skip

    @router.get("/person/{subject}")
    async def person(request: Request, subject: str, context: str = GENERAL_CONTEXT) -> Response:
        try:
            who = await node.resolve_identity(subject)
            text = encode_identity_text(who)
            about = await node.attestations(subject=who)
            explanation = explanation_view(await node.explain(who, context, top_paths=6))
        except TrustnodeError as exc:
            return web.page(request, "refused.html", status=404, why=str(exc))
        views, names = await web.views(about)
        contexts = sorted({GENERAL_CONTEXT, context} | {
            v.context for v in views if v.kind == "trust" and v.context})  # fmt: skip
        scores = [(c, await node.score(who, c)) for c in contexts]
        certified = sorted({v.claim for v in views if v.kind == "certify" and v.claim})
        claims = [claim_view(await node.claim(who, claim)) for claim in certified]
        ratings = [rating_view(text, c, s, r) for c, s, r in await node.ratings(who)]
        named = [*explanation.names, *(n for c in claims for p in c.paths for n in p),
                 *(r.rater for v in ratings for r in v.counted),
                 *(c for r in explanation.keys.recoveries for c in r.custodians),
                 *(c for s in explanation.keys.chain for c in s.custodians),
                 *(m for n in explanation.keys.notes for m in (n.issuer, n.subject))]  # fmt: skip
        names.update(await web.names([text, *named, *(f.flagger for f in explanation.flags)]))
        explanation = explanation.model_copy(update={"names": names})
        picture = draw_explanation(explanation, me=web.me)
        mine = [v for v in views if v.issuer == web.me]
        _, cursor = await web.recent()
        return web.page(
            request, "person.html", subject=text, name=names.get(text), views=views,
            scores=scores, context=context, explanation=explanation, picture=picture,
            claims=claims, ratings=ratings, mine=mine, names=names, cursor=cursor,
            petname=node.petnames().get(who), is_me=text == web.me,
        )  # fmt: skip

    @router.get("/community")
    async def community(request: Request) -> Response:
        status = await node.status()
        peers = node.peers()
        names = await web.names([encode_identity_text(p.identity) for p in peers])
        _, cursor = await web.recent()
        return web.page(
            request, "community.html", health=status, peers=peers, names=names, cursor=cursor,
            encode=encode_identity_text,
        )  # fmt: skip

    @router.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        text = q.strip()[:64]
        found = await node.find(text) if text else []
        return web.page(
            request, "search.html", q=text,
            found=[(encode_identity_text(r.identity), r, s) for r, s in found],
        )  # fmt: skip

    @router.get("/things")
    async def things(request: Request, uri: str = "") -> Response:
        uri = uri.strip()[:512]
        ratings: list[Any] = []
        names: dict[str, Any] = {}
        error = None
        if uri:
            try:
                subject = await node.resolve_subject(uri)
                shown = subject if isinstance(subject, str) else encode_identity_text(subject)
                ratings = [rating_view(shown, c, s, r) for c, s, r in await node.ratings(subject)]
                names = await web.names([r.rater for v in ratings for r in v.counted])
            except TrustnodeError as exc:
                error = str(exc)
        return web.page(request, "things.html", uri=uri, ratings=ratings, names=names,
                        error=error)  # fmt: skip

    @router.get("/invite")
    async def invite(request: Request) -> Response:
        ticket = node.invites.ticket  # the single-use invite we came in with, if any
        refused = None if ticket is None or ticket.refused is None else ticket.refused
        return web.page(request, "invite.html", code=None,
                        refused=refused and refusal_words(refused))  # fmt: skip


def _qr_svg(text: str) -> str:
    """The QR code of `text` as SVG markup (segno: numbers only, no peer text)."""
    made = segno.make(text, error="m")
    svg: str = made.svg_inline(scale=3, dark="#111", light="#fff", omitsize=True)
    return svg


def _add_actions(router: APIRouter, web: WebApp) -> None:  # noqa: C901  # one branch an action
    node = web.node

    @router.post("/invite")
    async def make_invite(request: Request, form: Posted) -> Response:
        fields = form.fields
        try:
            days = int(fields.get("days", "7") or "7")
            code = node.invite(
                expires_in_s=max(1, min(days, 365)) * 86_400,
                single_use=fields.get("single_use") == "on",
            )
        except (TrustnodeError, ValueError) as exc:
            return web.page(request, "refused.html", status=400, why=str(exc))
        return web.page(request, "invite.html", code=code, qr=_qr_svg(code),
                        single_use=fields.get("single_use") == "on")  # fmt: skip

    @router.post("/invite/use")
    async def use_invite(request: Request, form: Posted) -> Response:
        session, fields = form.session, form.fields
        try:
            made = await node.invites.use(
                fields.get("code", ""), community_id=node.config.community_id,
                me=node.identity, connect=node.connect,
            )  # fmt: skip
        except (TrustnodeError, OSError) as exc:
            session.notices.append(("error", f"Not used: {exc}"))
        else:
            inviter = encode_identity_text(made.inviter)
            once = " Your node presents it when it reaches them." if made.nonce else ""
            session.notices.append(("ok", f"Connecting to {inviter}.{once}"))
        return RedirectResponse(f"{PREFIX}/invite", status_code=303)

    @router.post("/things/rate")
    async def rate_thing(request: Request, form: Posted) -> Response:
        session, fields = form.session, form.fields
        uri = fields.get("uri", "").strip()[:512]
        try:
            context = fields.get("context", "").strip() or GENERAL_CONTEXT
            await node.rate(await node.resolve_subject(uri), int(fields.get("value", "0")),
                            context=context)  # fmt: skip
            session.notices.append(("ok", "Rating signed and sent."))
        except (TrustnodeError, ValueError) as exc:
            session.notices.append(("error", str(exc) or "Refused."))
        return RedirectResponse(f"{PREFIX}/things?uri={quote(uri, safe='')}", status_code=303)

    @router.post("/person/{subject}/{action}")
    async def act(request: Request, form: Posted, subject: str, action: str) -> Response:
        session, fields = form.session, form.fields
        back = f"{PREFIX}/person/{quote(subject, safe='')}"
        try:
            who = await node.resolve_identity(subject)
            context = fields.get("context", "").strip() or GENERAL_CONTEXT
            if action == "vouch":
                name = fields.get("name", "").strip() or None
                await node.trust(who, int(fields.get("value", "50")), context=context, name=name)
                done = "Vouch signed and sent."
            elif action == "flag":
                await node.distrust(who, int(fields.get("value", "100")), context=context)
                done = "Flag signed and sent."
            elif action == "certify":
                private = fields.get("private_value", "") or None
                made = await node.certify(who, fields.get("claim", "").strip(),
                                          private_value=private)  # fmt: skip
                salt = "" if made.salt is None else made.salt.hex()
                done = "Certified." + (salt and f" Give them this salt (it opens it): {salt}")
            elif action == "rate":
                await node.rate(who, int(fields.get("value", "0")), context=context)
                done = "Rating signed and sent."
            elif action == "revoke":
                kind = Kind[fields.get("kind", "").upper()]
                await node.revoke(kind, who, fields.get("scope", ""))
                done = "Withdrawn."
            elif action == "petname":
                petname = fields.get("petname", "").strip()
                if petname:
                    await node.set_petname(who, petname)
                    done = "Petname saved (only this node knows it)."
                else:
                    await node.remove_petname(who)
                    done = "Petname removed."
            else:
                return web.page(request, "refused.html", status=404, why="No such action.")
        except (TrustnodeError, ValueError, KeyError) as exc:
            session.notices.append(("error", str(exc) or "Refused."))
            return RedirectResponse(back, status_code=303)
        session.notices.append(("ok", done))
        return RedirectResponse(back, status_code=303)
