"""Sentinels shared by the sans-I/O parsers (h11's shape): "need more bytes", "ended"."""

from __future__ import annotations

from typing import Final

__all__ = ["END_OF_STREAM", "NEED_DATA", "EndOfStream", "NeedData"]


class NeedData:
    """A parser's `next_event` needs more bytes before it can return anything."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


class EndOfStream:
    """The peer ended the stream cleanly (a close record was received)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END_OF_STREAM"


NEED_DATA: Final = NeedData()
END_OF_STREAM: Final = EndOfStream()
