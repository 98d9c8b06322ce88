"""node/net/punch.py's simultaneous open: a cancelled attempt closes its socket.

Punching dials every address of a round at once and cancels the others when one
connects, and a new round cancels the last one's dial: a socket bound to our
listening port must not outlive its cancelled attempt (an open file, and a
bound socket sharing the listener's port, until the garbage collector finds it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import trio
import trio.testing

from node.net import punch


class _Socket:
    """A socket whose connect never completes (SYNs dropped): what a cancel meets."""

    made: ClassVar[list[_Socket]] = []

    def __init__(self, *args: Any) -> None:
        self.closed = False
        _Socket.made.append(self)

    def setsockopt(self, *args: Any) -> None:
        pass

    async def bind(self, address: tuple[str, int]) -> None:
        await trio.lowlevel.checkpoint()

    async def connect(self, address: tuple[str, int]) -> None:
        await trio.sleep_forever()

    def close(self) -> None:
        self.closed = True


async def test_a_cancelled_attempt_closes_its_socket(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    _Socket.made = []
    monkeypatch.setattr(trio.socket, "socket", _Socket)  # what node.net.punch calls
    with trio.move_on_after(3.0):  # in the second attempt's connect (2 s each)
        await punch.simultaneous_open(7400, ("203.0.113.5", 7400), start_at=trio.current_time())
    assert len(_Socket.made) == 2
    assert all(s.closed for s in _Socket.made)  # the timed-out one, and the cancelled one
