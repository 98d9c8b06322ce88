"""A single-use invite is enforced by the inviter's daemon (SPEC §12, issue 25).

Real daemons in subprocesses: the first joiner redeems the invite; the
inviter is killed with SIGKILL right after and restarted, and still refuses a
second identity presenting the same code (`invite_used`), which the second
joiner's daemon says plainly and keeps in its ticket.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.test_daemon import Daemon, as_json, daemons, free_port, ok, wait_until

pytestmark = pytest.mark.slow
__all__ = ["daemons"]  # the fixture, used by name


def _book(folder: Path) -> list[dict[str, object]]:
    path = folder / "invites.json"
    if not path.exists():
        return []
    entries: list[dict[str, object]] = json.loads(path.read_text())["invites"]
    return entries


def _ticket(folder: Path) -> dict[str, object]:
    ticket: dict[str, object] = json.loads((folder / "invite.json").read_text())
    return ticket


def test_the_second_identity_with_a_single_use_invite_is_refused(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    ann, ben, cat = (tmp_path / name for name in ("ann", "ben", "cat"))
    listen, api = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    ok(ann, "init", "--listen", listen, "--api-listen", api)
    daemons.append(Daemon(ann))
    code = ok(ann, "invite", "--single-use").strip()
    assert _book(ann)[0]["used_by"] is None  # recorded before the code was printed

    said = ok(ben, "join", code, "--listen", f"127.0.0.1:{free_port()}",
              "--api-listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    assert "single-use" in said
    ben_id = as_json(ben, "status")["identity"]
    daemons.append(Daemon(ben))
    wait_until(lambda: _book(ann)[0]["used_by"] == ben_id)

    # Acknowledged is on disk: a SIGKILL right after does not forget who used it.
    daemons[0].process.send_signal(signal.SIGKILL)
    daemons[0].process.communicate(timeout=30)  # reaps it and closes its pipes
    daemons.append(Daemon(ann))
    assert _book(ann)[0]["used_by"] == ben_id

    ok(cat, "join", code, "--listen", f"127.0.0.1:{free_port()}",
       "--api-listen", f"127.0.0.1:{free_port()}")  # fmt: skip
    cat_daemon = Daemon(cat)
    daemons.append(cat_daemon)
    wait_until(lambda: _ticket(cat)["refused"] == "invite_used")
    assert _book(ann)[0]["used_by"] == ben_id  # still ben's
    # ... and ann, whom cat will ask, reads why in her status (the daemon's, over the API).
    said = "1 invite redemption refused in the last 24 h: already used"
    assert as_json(ann, "status")["invite_refusals"] == said
    assert said in " ".join(ok(ann, "status").split())

    cat_daemon.process.send_signal(signal.SIGTERM)
    _, err = cat_daemon.process.communicate(timeout=30)
    refusals = [json.loads(line) for line in err.splitlines() if "invite_used" in line]
    assert refusals, err
    assert refusals[0]["level"] == "error"
    assert "already used by another identity" in refusals[0]["message"]
    # ben's later connections present the invite again and stay welcome.
    ok(ben, "status")
    assert _ticket(ben)["refused"] is None
    for daemon in daemons[1:3]:  # ben, and ann restarted: a clean stop closes their pipes
        daemon.stop()
