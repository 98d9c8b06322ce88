"""Ctrl-C during a simulation: one line and exit 130, not a traceback per task.

trio delivers SIGINT as a `KeyboardInterrupt` raised in whichever task runs,
and every nursery it crosses wraps it in an `ExceptionGroup` (dozens of lines
for a community of members). The CLI asks `is_interrupt` whether an error is
nothing but that; sweep workers (other processes, which get the terminal's
SIGINT too) exit quietly through `quiet_interrupt`.
"""

from __future__ import annotations

import os
import signal
import types

__all__ = ["EXIT_INTERRUPTED", "is_interrupt", "quiet_interrupt"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def is_interrupt(error: BaseException) -> bool:
    """Whether `error` is a KeyboardInterrupt, or a (nested) group of only those
    (and the cancellations it caused)."""
    import trio  # the CLI imports this module before it needs trio

    if isinstance(error, KeyboardInterrupt):
        return True
    if isinstance(error, BaseExceptionGroup):
        leaves = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        return bool(leaves) and all(is_interrupt(e) for e in leaves)
    return False


def _exit_now(signum: int, frame: types.FrameType | None) -> None:
    del signum, frame
    os._exit(EXIT_INTERRUPTED)  # a worker: no cleanup to do, no traceback to print


def quiet_interrupt() -> None:
    """A sweep worker's initializer: on SIGINT, exit at once without a traceback."""
    signal.signal(signal.SIGINT, _exit_now)
