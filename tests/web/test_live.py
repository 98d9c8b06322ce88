"""Two daemons, two browsers: a vouch made through one node's form changes the
score shown on the other node's page, without a reload (server-sent events)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_daemon import wait_until
from tests.web.conftest import Street

pytestmark = pytest.mark.slow
PRIVATE = "12 rue des Lilas, 3rd floor"


def _score(page: Any) -> str:
    text: str = page.locator('td.score[data-context="general"]').inner_text()
    return text


def test_a_vouch_through_the_form_shows_on_the_other_nodes_page_live(
    street: Street, watched: Any
) -> None:
    cat = street.ids["cat"]
    ann = watched("ann")
    ann.go(f"/person/{cat}")
    # expect() polls from Playwright, not by eval in the page: the app's CSP (script-src
    # 'self') refuses wait_for_function's string predicates once they have to poll.
    expect(ann.page.locator("body")).to_have_attribute("data-live", "on")
    ann.page.evaluate("window.__not_reloaded = true")
    before = _score(ann.page)

    ben = watched("ben")
    ben.go(f"/person/{cat}")
    ben.page.fill("#vouch-value", "90")
    ben.page.click("form[action$='/vouch'] button")
    ben.page.wait_for_load_state("load")
    assert "Vouch signed and sent." in ben.page.inner_text("main")

    general = ann.page.locator('td.score[data-context="general"]')
    expect(general).not_to_have_text(before, timeout=30_000)
    assert ann.page.evaluate("window.__not_reloaded") is True
    assert float(_score(ann.page)) > float(before)
    for page in (ann, ben):
        page.assert_clean()


def test_a_private_value_never_reaches_the_other_node(street: Street, watched: Any) -> None:
    cat = street.ids["cat"]
    ben = watched("ben")
    ben.go(f"/person/{cat}")
    ben.page.fill("#cert-claim", "resident:rue-des-lilas")
    ben.page.fill("#cert-private", PRIVATE)
    ben.page.click("form[action$='/certify'] button")
    ben.page.wait_for_load_state("load")
    assert "Give them this salt" in ben.page.inner_text("main")

    def arrived() -> bool:
        found = street.api("ann", "GET", "/v1/attestations", params={"subject": cat})
        return any(a["kind"] == "certify" for a in found)

    wait_until(arrived)
    ann = watched("ann")
    for path in ("/", f"/person/{cat}", "/community"):
        ann.go(path)
        assert PRIVATE not in ann.page.content()
        assert "resident:rue-des-lilas" in ann.page.content() or path != f"/person/{cat}"
    ann.assert_clean()
