"""The one-task-per-direction rule of trio streams, for our own streams.

A `trio.abc.Stream` lets at most one task send and one task receive at a time,
and says so with `BusyResourceError` (trio's own streams use a private detector
for it). Our secure stream (`node.net.transport`) and the simulated one
(`node.net.simnet`) both need it; the conformance tests
(`trio.testing.check_two_way_stream`) check it for both.
"""

from __future__ import annotations

import trio

__all__ = ["ConflictDetector"]


class ConflictDetector:
    """Raise BusyResourceError when two tasks use one direction at once (trio's rule)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(f"another task is already {self._what}")
        self._held = True

    def __exit__(self, *exc_info: object) -> None:
        self._held = False
