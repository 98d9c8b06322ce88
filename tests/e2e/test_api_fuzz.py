"""Schemathesis against a real daemon's API, from the committed OpenAPI document.

Every operation gets generated valid and invalid requests (with the token):
no server error, every status code and content type documented, every
response matching its schema, every schema-violating request refused — and
the daemon still running afterwards. (Schema-valid requests may still be
refused: an identity's checksum is not expressible in the schema.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.api.openapi import DOCUMENT
from tests.e2e.test_daemon import Daemon, free_port, ok

pytestmark = pytest.mark.slow
SCHEMATHESIS = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is a test extra")
def test_generated_requests_find_no_server_error(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ok(folder, "init", "--listen", f"127.0.0.1:{free_port()}", "--api-listen",
       f"127.0.0.1:{free_port()}")  # fmt: skip
    daemon = Daemon(folder)
    try:
        token = (folder / "api.token").read_text().strip()
        run = subprocess.run(
            [
                str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", str(DOCUMENT), "--url", f"http://{daemon.api}",
                "-H", f"Authorization: Bearer {token}", "--checks", "all",
                "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
                "--seed", "1", "--no-color",
            ],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:]
        assert daemon.process.poll() is None, "the daemon died under fuzzing"
    finally:
        daemon.stop()
