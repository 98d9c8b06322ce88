"""Every page in a real browser, at desktop and phone width: it renders, has no
horizontal scroll at 375 px, passes axe-core with no serious or critical
violation, runs nothing it should not, and leaves a screenshot (CI artifact,
`tests/web/screenshots/`, named in the README)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.web.conftest import AXE, SCREENSHOTS, Street

pytestmark = pytest.mark.slow


def _pages(street: Street) -> dict[str, str]:
    return {
        "home": "/",
        "person": f"/person/{street.ids['ben']}",
        "person-hostile": f"/person/{street.ids['cat']}",
        "community": "/community",
        "invite": "/invite",
        "search": "/search?q=be",
        "things": "/things?uri=" + quote("https://example.org/bike/17", safe=""),
    }


def _axe(page: Any) -> list[dict[str, Any]]:
    page.evaluate(AXE.read_text("utf-8") + "\n;0")  # evaluated by the driver, not the page's CSP
    result: dict[str, Any] = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_renders_accessibly_at_desktop_and_phone_width(
    street: Street, watched: Any, width: int
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page = watched("ann", width)
    for name, path in _pages(street).items():
        answer = page.go(path)
        assert answer.status == 200, (name, answer.status)
        page.page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 375:
            scroll, client = page.page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll <= client, (name, scroll, client)
        serious = _axe(page.page)
        assert serious == [], (name, [(v["id"], v["help"], v["nodes"][0]["html"]) for v in serious])
    page.assert_clean()


def test_an_invite_is_shown_as_a_command_and_a_qr_code(street: Street, watched: Any) -> None:
    page = watched("ann")
    page.go("/invite")
    page.page.check("#single_use")
    page.page.click("form[action$='/invite'] button")
    page.page.wait_for_load_state("load")
    code = page.page.inner_text("#invite-code")
    assert code.startswith("trustnode join tninvite1_")
    assert page.page.locator(".qr svg").count() == 1
    SCREENSHOTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOTS / "invite-made-1280.png"), full_page=True)
    page.assert_clean()


def test_search_finds_a_member_by_name(street: Street, watched: Any) -> None:
    page = watched("ann")
    page.go("/")
    page.page.fill("#q", "Ben")
    page.page.press("#q", "Enter")
    page.page.wait_for_load_state("load")
    link = page.page.locator(f"main a[href$='{street.ids['ben']}']")
    assert link.count() >= 1
    link.first.click()
    page.page.wait_for_load_state("load")
    assert street.ids["ben"] in page.page.inner_text("main")
    page.assert_clean()


def test_a_thing_is_rated_through_its_form_and_the_rater_counts(
    street: Street, watched: Any
) -> None:
    uri = "https://example.org/ladder/3"
    page = watched("ann")
    page.go("/things?uri=" + quote(uri, safe=""))
    assert "No one rated it." in page.page.inner_text("main")
    page.page.fill("#thing-value", "80")
    page.page.click("form[action$='/things/rate'] button")
    page.page.wait_for_load_state("load")
    text = page.page.inner_text("main")
    assert "Rating signed and sent." in text
    assert "general: 80" in text  # on the -100..100 scale it was given on
    assert page.page.locator("main table a", has_text="you").count() == 1
    page.assert_clean()
