"""One process at a time on a data directory: an exclusive `flock` on `<data dir>/lock`.

Two daemons on one directory would each take the other's peers' sessions,
and the second one to stop removed `api.address`, so the CLI believed the
first was down and wrote to the store behind its back. The daemon (`run`)
and every command that works on the store in-process take this lock first;
whoever holds it wrote its PID into the file, so the refusal can name it.

The kernel releases a `flock` when its holder's file closes or its process
dies (even by `kill -9`), so a stale lock cannot outlive a crash, and we
never delete the lock file: removing it while another process waits on it
would let two processes hold "the" lock at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from node.errors import StoreError

__all__ = ["LOCK_FILE", "DataDirLockedError", "lock_data_dir"]

LOCK_FILE = "lock"
_MAX_PID_BYTES = 32
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class DataDirLockedError(StoreError):
    """Another process holds the data directory's lock; `pid` is its PID when known."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{path} is in use by {who} (a trustnode daemon or command): stop it first, "
            "or use another --data-dir"
        )
        self.pid = pid


def _holder(fd: int) -> int | None:
    """The PID the lock's holder wrote, if it wrote one we can read."""
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, _MAX_PID_BYTES, 0).decode("ascii").strip()
        return int(text) if text.isdigit() else None
    return None


def _open(lock_path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether we may write our PID into it.

    On a read-only disk an existing lock file still opens for reading, and a
    read-only descriptor can hold a `flock`: the lock then still keeps a second
    process out, and what fails is the store, with its own clear message.
    """
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | flags, 0o600), True
    except OSError as exc:
        first = exc
    try:
        return os.open(lock_path, os.O_RDONLY | flags), False
    except OSError:
        hint = " (the data directory is read-only)" if first.errno in _READ_ONLY else ""
        raise StoreError(f"cannot open {lock_path}: {first.strerror}{hint}") from first


@contextlib.contextmanager
def lock_data_dir(path: Path) -> Iterator[None]:
    """Hold `<path>/lock` exclusively for the block.

    Raises:
        DataDirLockedError: another process holds it (we never wait: a second
            daemon should fail at once, naming the first).
        StoreError: the lock file cannot be opened.
    """
    lock_path = path / LOCK_FILE
    fd, writable = _open(lock_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirLockedError(path, _holder(fd)) from None
        except OSError as exc:
            raise StoreError(f"cannot lock {lock_path}: {exc.strerror}") from exc
        if writable:  # ours now: say who holds it (the previous holder's PID may be longer)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock
