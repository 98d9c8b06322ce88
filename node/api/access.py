"""Reaching a node's API: the bearer token file, the address file, the loopback rule.

Light on purpose (no web framework): CLI clients import it on every call.

The API listens on loopback (or a Unix socket) unless `[api] allow_remote` is
set: a node's API can sign in its member's name, so exposing it is a decision
the member makes explicitly. The token is 32 random bytes (URL-safe base64) in
`<data dir>/api.token`, created with mode 0600 from the first byte; a token
file that other users can read is refused, like the key file. The running
daemon writes the address it bound in `<data dir>/api.address` (its config
may say port 0) and removes it when it stops.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from node.errors import ConfigError, StoreError
from node.home.config import parse_address
from node.net.addresses import is_loopback_host

__all__ = [
    "ADDRESS_FILE",
    "TOKEN_FILE",
    "api_url",
    "check_api_address",
    "ensure_token",
    "read_token",
]

ADDRESS_FILE = "api.address"
TOKEN_FILE = "api.token"  # noqa: S105  # a file name, not a secret


def ensure_token(data_dir: Path) -> str:
    """The API token, created (mode 0600) if the data directory has none yet."""
    path = data_dir / TOKEN_FILE
    if not path.exists():
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return read_token(data_dir)
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return token
    return read_token(data_dir)


def read_token(data_dir: Path) -> str:
    """The API token; refuses a file that group or others can read.

    Raises:
        StoreError: missing, exposed or malformed.
    """
    path = data_dir / TOKEN_FILE
    if not path.exists():
        # Never made again behind the member's back: scripts and apps hold the old one.
        raise StoreError(
            f"no API token {path}: restore it from your backup, or make a new one with: "
            f"(umask 077; head -c 32 /dev/urandom | base64 > {path})"
        )
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(f"{path} is readable by other users; run: chmod 600 {path}")
        text = path.read_text("ascii", errors="replace")[:200].strip()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    if len(text) < 16 or not text.isprintable() or " " in text:
        raise StoreError(f"{path} does not hold a token")
    return text


def check_api_address(listen: str, *, allow_remote: bool) -> None:
    """Refuse a non-loopback API address unless explicitly allowed."""
    if listen.startswith("unix:"):
        return
    host, _ = parse_address(listen, what="[api] listen")
    if not is_loopback_host(host) and not allow_remote:
        raise ConfigError(
            f"[api] listen {listen}: not a loopback address; set [api] allow_remote = true "
            "to expose the API (it signs in your name: keep the token secret)"
        )


def api_url(listen: str) -> str:
    """The base URL a client uses for `listen` (http://host:port or a unix socket path)."""
    if listen.startswith("unix:"):
        return listen
    host, port = parse_address(listen)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"
