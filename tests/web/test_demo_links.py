"""`trustnode demo --keep` prints a working web-app login link for each neighbour."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.e2e.test_daemon import COMMAND

pytestmark = pytest.mark.slow
LINK = re.compile(r"^\s+(\w+): (http://127\.0\.0\.1:\d+/app/login\?secret=[\w-]+)$")


def test_demo_keep_prints_a_login_link_per_neighbour() -> None:
    demo = subprocess.Popen(
        [*COMMAND, "demo", "--keep"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200"},
        # A background job starts with SIGINT ignored: give the demo the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    links: dict[str, str] = {}
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 120
        for line in demo.stdout:
            found = LINK.match(line.rstrip("\n"))
            if found:
                links[found[1]] = found[2]
            if len(links) == 6 or time.monotonic() > deadline:
                break
        assert set(links) == {"alice", "bob", "carol", "dave", "erin", "grace"}
        with httpx.Client() as browser:
            assert browser.get(links["alice"]).status_code == 303
            home = browser.get(links["alice"].split("/login")[0] + "/")
            assert home.status_code == 200
            assert "Recent activity" in home.text
            assert browser.get(links["alice"]).status_code == 403  # spent
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    assert "Stopped every node cleanly" in out
