"""Every route of the web app refuses a browser without a session, and every action
one without the form's CSRF token or from another origin (no Chromium needed).

The walks read the routes from the app itself, so a route added later is walked
too: one registered without the check answers, and the walk names it (the
`..._added_without_...` tests show that it would).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Route

from node.api.app import create_app
from node.home.config import NodeConfig
from node.service import Node, open_node
from protocol.identity import IdentityKey, encode_identity_text

TOKEN = "t" * 43
BASE = "http://127.0.0.1:8080"  # a Host the web app answers to (node.web.security)
OPEN = frozenset({"/app/login"})  # the page that makes a session cannot need one
STATIC = "/app/static"
BOB = encode_identity_text(IdentityKey.from_seed(bytes([2]) * 32).identity)
# A form that any action would accept, had it no session check: what it must not do.
FORM = {"csrf": "x", "value": "100", "claim": "resident:x", "code": "x", "days": "1",
        "single_use": "on", "uri": "urn:x:y", "petname": "Bob", "kind": "trust"}  # fmt: skip


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = NodeConfig(data_dir=tmp_path / "n", community_id=bytes(32))
    async with open_node(config, network=False) as opened:
        yield opened


def _example(path: str) -> str:
    """`path` with each parameter filled: a real identity, or a word for the rest."""
    path = re.sub(r"\{subject(:path)?\}", BOB, path)
    return re.sub(r"\{action\}", "vouch", re.sub(r"\{[^}]+\}", "x", path))


def _web_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route under /app/ but the login page and the static files.

    Anything else mounted under /app/ fails the walk: we could not walk into it."""
    found = []
    for route in iter_route_contexts(app.routes):  # into included routers too
        path = route.path or ""
        if not (path == "/app" or path.startswith("/app/")) or path in OPEN:
            continue
        kind = type(route.original_route)
        if issubclass(kind, Mount):
            assert path == STATIC, f"{path}: a mount under /app/ the walk cannot enter"
            continue
        assert issubclass(kind, Route), f"{path}: a {kind.__name__} the walk cannot try"
        found += [(m, _example(path)) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


async def _unguarded(app: FastAPI, node: Node) -> list[str]:
    """The routes under /app/ that did not refuse a request without a session."""
    answered = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        for method, path in _web_routes(app):
            data = FORM if method == "POST" else None
            answer = await browser.request(method, path, data=data, headers={"origin": BASE})
            if answer.status_code not in {401, 403}:
                answered.append(f"{method} {path} {answer.status_code}")
    return answered


async def _unchecked_actions(app: FastAPI) -> list[str]:
    """The POST routes under /app/ that, for a logged-in browser, did not refuse a form
    with a stale token, or one with the right token from another origin."""
    answered = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        made = await browser.post("/v1/login-links", headers={"Authorization": f"Bearer {TOKEN}"})
        assert (await browser.get(made.json()["path"])).status_code == 303
        home = (await browser.get("/app/")).text
        token = re.findall(r'name="csrf" value="([^"]+)"', home)[0]
        for method, path in _web_routes(app):
            if method != "POST":
                continue
            for origin, csrf in ((BASE, "stale"), ("http://evil.example", token)):
                data = {**FORM, "csrf": csrf}
                answer = await browser.post(path, data=data, headers={"origin": origin})
                if answer.status_code != 403:
                    answered.append(f"POST {path} {answer.status_code} ({origin})")
        # The control: the same browser's right token from our origin is let through.
        done = await browser.post(
            f"/app/person/{BOB}/petname",
            data={"csrf": token, "petname": "Bob"},
            headers={"origin": BASE},
        )
        assert done.status_code == 303, done.text
    return answered


async def test_every_web_route_refuses_a_browser_without_a_session(node: Node) -> None:
    app = create_app(node, token=TOKEN)
    walked = _web_routes(app)
    assert len(walked) >= 12, walked  # the pages and actions of today, at least
    assert await _unguarded(app, node) == []
    assert (await node.status()).attestations == 0  # nothing was signed
    assert len(node.invites.book) == 0  # no invite was made
    assert node.petnames() == {}


async def test_every_web_action_refuses_a_stale_token_or_another_origin(node: Node) -> None:
    app = create_app(node, token=TOKEN)
    assert len([m for m, _ in _web_routes(app) if m == "POST"]) >= 5, _web_routes(app)
    assert await _unchecked_actions(app) == []
    assert (await node.status()).attestations == 0
    assert len(node.invites.book) == 0
    assert list(node.petnames().values()) == ["Bob"]  # the control's, and no other


async def test_the_walk_names_an_action_added_without_the_form_check(node: Node) -> None:
    app = create_app(node, token=TOKEN)

    @app.post("/app/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"signed": "anything"}

    assert await _unchecked_actions(app) == [
        "POST /app/forgotten 200 (http://127.0.0.1:8080)",
        "POST /app/forgotten 200 (http://evil.example)",
    ]


async def test_the_walk_names_a_route_added_without_the_check(node: Node) -> None:
    app = create_app(node, token=TOKEN)

    @app.get("/app/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "shown"}

    assert ("GET", "/app/forgotten") in _web_routes(app)
    assert await _unguarded(app, node) == ["GET /app/forgotten 200"]
