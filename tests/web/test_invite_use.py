"""Using an invite from the web app (issue 25): in a real browser, Ben's node
redeems Ann's single-use invite; Cat's node, given the same code, is refused
by Ann's (`invite_used`), and Cat's invite page says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_daemon import wait_until
from tests.web.conftest import SCREENSHOTS, Street

pytestmark = pytest.mark.slow


def _use(page: Any, code: str) -> str:
    page.go("/invite")
    page.page.fill("#code", f"trustnode join {code}")  # the line the invite page shows
    page.page.click("form[action$='/invite/use'] button")
    page.page.wait_for_load_state("load")
    text: str = page.page.inner_text("main")
    return text


def test_a_single_use_invite_used_twice_from_the_web(street: Street, watched: Any) -> None:
    book = street.ann / "invites.json"

    def entries() -> list[Any]:
        return json.loads(book.read_text())["invites"] if book.exists() else []

    earlier = {e["nonce"] for e in entries()}  # other tests on this street may make invites
    code = street.api("ann", "POST", "/v1/invites", json={"single_use": True})["code"]

    def bound_to() -> Any:
        (entry,) = [e for e in entries() if e["nonce"] not in earlier]
        return entry["used_by"]

    ben = watched("ben")
    assert f"Connecting to {street.ids['ann']}" in _use(ben, code)
    wait_until(lambda: bound_to() == street.ids["ben"])
    ben.assert_clean()

    cat = watched("cat")
    assert "Connecting to" in _use(cat, code)
    ticket = street.cat / "invite.json"
    wait_until(lambda: json.loads(ticket.read_text())["refused"] == "invite_used")
    assert bound_to() == street.ids["ben"]
    cat.go("/invite")
    refused = cat.page.inner_text("#invite-refused")
    assert "already used by another identity" in refused
    SCREENSHOTS.mkdir(exist_ok=True)
    cat.page.screenshot(path=str(SCREENSHOTS / "invite-refused-1280.png"), full_page=True)
    cat.assert_clean()

    said = _use(cat, "tninvite1_notacode")
    assert "Not used" in said
