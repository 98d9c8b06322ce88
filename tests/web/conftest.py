"""Real daemons and the OS's Chromium for the web app's browser tests.

Three `trustnode run` daemons on loopback (ann invites ben and cat; cat is
hostile: its name, about line and the thing it rates hold markup), driven by
the real CLI, and headless Chromium from the OS packages through Playwright
(`executable_path`, never a downloaded browser). In CI the browser must be
there (`.ci/run` installs it): these tests never skip when `CI` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_daemon import Daemon, free_port, ok, wait_until

CHROMIUM = os.environ.get("TRUSTNODE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
HOSTILE_NAME = "<script>alert(1)</script>"
HOSTILE_ABOUT = '"><img src=x onerror=alert(2)>'
HOSTILE_VOUCH_NAME = "<b>ש</b>'\"><svg onload=alert(3)>"
HOSTILE_THING = 'x:"><img/src=x/onerror=alert(4)>'
# Watches, from before any page script runs, what must never happen.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@dataclass
class Street:
    ann: Path
    ben: Path
    cat: Path
    ids: dict[str, str]
    daemons: dict[str, Daemon]

    def api(self, who: str, method: str, path: str, **kw: Any) -> Any:
        """The bearer-token API of `who`'s daemon (what scripts use)."""
        token = (getattr(self, who) / "api.token").read_text().strip()
        answer = httpx.request(
            method, f"http://{self.daemons[who].api}{path}",
            headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw,
        )  # fmt: skip
        assert answer.is_success, answer.text
        return answer.json()

    def login_url(self, who: str) -> str:
        """What `trustnode open` opens (its own test runs the command itself)."""
        path = self.api(who, "POST", "/v1/login-links")["path"]
        return f"http://{self.daemons[who].api}{path}"

    def base(self, who: str) -> str:
        return f"http://{self.daemons[who].api}/app"


@pytest.fixture(scope="session")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Street]:
    root = tmp_path_factory.mktemp("street")
    ann, ben, cat = (root / name for name in ("ann", "ben", "cat"))
    daemons: dict[str, Daemon] = {}
    try:
        ok(ann, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen", "127.0.0.1:0")
        daemons["ann"] = Daemon(ann)
        made = Street(ann, ben, cat, {}, daemons)
        code = made.api("ann", "POST", "/v1/invites", json={})["code"]

        def join_and_run(folder: Path) -> Daemon:
            ok(folder, "join", code, "--listen", f"127.0.0.1:{free_port()}",
               "--api-listen", "127.0.0.1:0")  # fmt: skip
            return Daemon(folder)

        with ThreadPoolExecutor(2) as pool:  # both at once: CLI start-up is most of the wait
            started = {f.name: pool.submit(join_and_run, f) for f in (ben, cat)}
        daemons.update({n: f.result() for n, f in started.items() if f.exception() is None})
        for future in started.values():
            future.result()  # a failed start fails the fixture (the other one is stopped)
        made.ids = {w: made.api(w, "GET", "/v1/status")["identity"] for w in daemons}
        ids = made.ids
        said: list[tuple[str, str, dict[str, Any]]] = [
            ("ann", "profile", {"name": "Ann"}),
            ("ben", "profile", {"name": "Ben"}),
            ("cat", "profile", {"name": HOSTILE_NAME, "about": HOSTILE_ABOUT}),
            ("ann", "trust", {"subject": ids["ben"], "value": 80, "name": "Ben"}),
            ("ben", "trust", {"subject": ids["ann"], "value": 80}),
            ("ann", "trust", {"subject": ids["cat"], "value": 10, "name": HOSTILE_VOUCH_NAME}),
        ]
        for who, what, body in said:
            made.api(who, "POST", f"/v1/{what}", json=body)
        made.api("cat", "POST", "/v1/rate", json={"subject": HOSTILE_THING, "value": 90})
        bike = {"subject": "https://example.org/bike/17", "value": 70, "context": "lending"}
        made.api("ben", "POST", "/v1/rate", json=bike)
        wait_until(
            lambda: all(made.api(w, "GET", "/v1/status")["attestations"] >= 8 for w in daemons)
        )
        yield made
    finally:
        for daemon in daemons.values():
            if daemon.process.poll() is None:
                daemon.process.terminate()
            daemon.process.communicate(timeout=30)  # closes the pipes too


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no browser at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Watched:
    """A logged-in page that records console errors, page errors, dialogs and CSP
    violations: the signs that something from a peer ran."""

    def __init__(self, browser: Any, street: Street, who: str, width: int = 1280) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []

        def on_console(message: Any) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.base = street.base(who)
        self.page.goto(street.login_url(who))

    def go(self, path: str) -> Any:
        answer = self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
        return answer

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations")
        return found

    def assert_clean(self) -> None:
        assert self.dialogs == []
        assert self.errors == []
        assert self.violations() == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any, street: Street) -> Iterator[Any]:
    opened: list[Watched] = []

    def open_(who: str, width: int = 1280) -> Watched:
        page = Watched(browser, street, who, width)
        opened.append(page)
        return page

    yield open_
    for page in opened:
        page.close()
