"""The member's pages and actions: home, people, community, search, things, invites.

Each route is a thin read or write through the node, rendered by `WebApp.page`.
None checks a session or a form itself: `add_pages` and `add_actions` are given
the routers of `node.web.app` whose dependencies do (tests/web/test_guard.py
walks them all).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from node.api.views import claim_view, explanation_view, rating_view
from node.service.invites import refusal_words
from node.web.pages import PREFIX, Posted, WebApp
from node.web.picture import draw_explanation
from protocol.errors import TrustnodeError
from protocol.identity import encode_identity_text
from protocol.statement import GENERAL_CONTEXT, Kind

__all__ = ["add_actions", "add_pages"]


def add_pages(router: APIRouter, web: WebApp) -> None:
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


def add_actions(router: APIRouter, web: WebApp) -> None:  # noqa: C901  # one branch an action
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
