"""The web app's guards against a real daemon: login, CSRF, Host, headers, inert text."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_daemon import ok
from tests.web.conftest import (
    HOSTILE_ABOUT,
    HOSTILE_NAME,
    HOSTILE_THING,
    HOSTILE_VOUCH_NAME,
    Street,
)

pytestmark = pytest.mark.slow


def test_a_login_link_from_trustnode_open_works_once(street: Street) -> None:
    url = ok(street.ann, "open", "--no-browser").strip()
    assert url.startswith(f"http://{street.daemons['ann'].api}/app/login?secret=")
    with httpx.Client() as browser:
        assert browser.get(street.base("ann") + "/").status_code == 401
        first = browser.get(url)
        assert first.status_code == 303
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/app" in cookie
        assert browser.get(street.base("ann") + "/").status_code == 200
    with httpx.Client() as other:
        again = other.get(url)
        assert again.status_code == 403
        assert "not valid" in again.text
        assert other.get(street.base("ann") + "/").status_code == 401


def test_every_answer_carries_the_security_headers(street: Street) -> None:
    for path in ("/", "/login?secret=x", "/static/app.js"):
        headers = httpx.get(street.base("ann") + path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"


def test_a_foreign_host_is_refused(street: Street) -> None:
    api = street.daemons["ann"].api
    port = api.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "127.0.0.1", f"rebind.attacker.test:{port}"):
        answer = httpx.get(f"http://{api}/app/login?secret=x", headers={"Host": host})
        assert answer.status_code == 421, host
    assert httpx.get(f"http://localhost:{port}/app/").status_code == 401  # ours: answered


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(
    street: Street,
) -> None:
    target = street.base("ann") + f"/person/{street.ids['cat']}/flag"
    before = street.api("ann", "GET", "/v1/attestations", params={"issuer": street.ids["ann"]})
    with httpx.Client() as browser:
        browser.get(street.login_url("ann"))
        page = browser.get(street.base("ann") + f"/person/{street.ids['cat']}").text
        token = page.split('name="csrf" value="')[1].split('"')[0]
        assert browser.post(target, data={"value": "100"}).status_code == 403
        assert browser.post(target, data={"value": "100", "csrf": "forged"}).status_code == 403
        cross = browser.post(
            target, data={"value": "100", "csrf": token}, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
    with httpx.Client() as stranger:  # no session at all, even with a token
        assert stranger.post(target, data={"value": "100", "csrf": token}).status_code == 403
    after = street.api("ann", "GET", "/v1/attestations", params={"issuer": street.ids["ann"]})
    assert len(after) == len(before)  # nothing was signed


def test_the_bearer_api_still_works_beside_the_app(street: Street) -> None:
    token = (street.ann / "api.token").read_text().strip()
    api = f"http://{street.daemons['ann'].api}"
    assert httpx.get(api + "/v1/status").status_code == 401
    assert httpx.get(api + "/v1/status", headers={"Authorization": f"Bearer {token}"}).is_success
    assert httpx.post(api + "/v1/login-links").status_code == 401


def test_hostile_names_claims_and_uris_are_shown_as_inert_text(
    street: Street, watched: Any
) -> None:
    ben = watched("ben")
    ben.go(f"/person/{street.ids['cat']}")
    text = ben.page.inner_text("main")
    assert HOSTILE_NAME in text or HOSTILE_VOUCH_NAME in text
    assert ben.page.locator("main script").count() == 0
    assert ben.page.locator("main img").count() == 0
    ben.go("/")
    ben.go("/things?uri=" + quote(HOSTILE_THING, safe=""))
    assert HOSTILE_THING in ben.page.inner_text("main")
    assert ben.page.locator("main img").count() == 0
    ben.go("/search?q=" + quote("<script>", safe=""))
    ann = watched("ann")
    ann.go(f"/person/{street.ids['cat']}")
    assert HOSTILE_NAME in ann.page.inner_text("main")  # cat's self-claimed name, as text
    ann.go("/")
    for page in (ben, ann):
        page.assert_clean()
    assert HOSTILE_ABOUT  # carried in cat's profile; checked inert above with the rest


def test_open_event_streams_are_bounded_the_oldest_ends(street: Street) -> None:
    base = street.base("ben")
    clients = [httpx.Client(timeout=30) for _ in range(9)]
    try:
        streams = []
        for client in clients:
            client.get(street.login_url("ben"))
            stream = client.stream("GET", base + "/events?after=0")
            answer = stream.__enter__()
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            streams.append((stream, answer))
        oldest = b"".join(streams[0][1].iter_bytes())  # ends: the ninth stream pushed it out
        assert oldest.startswith(b"retry: 2000")
        assert httpx.get(f"http://{street.daemons['ben'].api}/health").is_success
        newest = streams[-1][1].iter_lines()
        backlog = list(itertools.takewhile(lambda line: line != ": keep-alive", newest))
        assert backlog[0] == "retry: 2000"
        assert any(line.startswith("event: change") for line in backlog)  # the history first
        # ... then 15 s of quiet gave a keep-alive comment, and the feed goes on after it:
        street.api("ben", "POST", "/v1/rate", json={"subject": "urn:x:kettle", "value": 5})
        after = [next(newest) for _ in range(4)]
        assert any(line.startswith("event: change") for line in after), after
        for stream, _ in streams:
            stream.__exit__(None, None, None)
    finally:
        for client in clients:
            client.close()
