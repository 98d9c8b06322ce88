"""Serving the API with Hypercorn's trio worker, and the bearer token file.

The API listens on loopback (or a Unix socket) unless `[api] allow_remote` is
set: a node's API can sign in its member's name, so exposing it is a decision
the member makes explicitly. The token is 32 random bytes (URL-safe base64) in
`<data dir>/api.token`, created with mode 0600 from the first byte; a token
file that other users can read is refused, like the key file.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

import trio
from fastapi import FastAPI
from hypercorn.config import Config
from hypercorn.trio import serve

from node.config import is_loopback, parse_address
from node.errors import ConfigError, StoreError

__all__ = ["ADDRESS_FILE", "TOKEN_FILE", "api_url", "ensure_token", "read_token", "serve_api"]

ADDRESS_FILE = "api.address"  # where the running daemon's API listens (removed at stop)
TOKEN_FILE = "api.token"  # noqa: S105  # a file name, not a secret
log = logging.getLogger("trustnode.api")


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
    if not is_loopback(host) and not allow_remote:
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


async def serve_api(
    app: FastAPI,
    listen: str,
    *,
    allow_remote: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listen` until cancelled; `task_status` gets the bound address."""
    check_api_address(listen, allow_remote=allow_remote)
    config = Config()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = logging.getLogger("trustnode.api.server")
    config.graceful_timeout = 2.0

    async def started(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(
            app,  # type: ignore[arg-type]  # FastAPI is an ASGI app; hypercorn's type is narrower
            config,
            shutdown_trigger=trio.sleep_forever,
            task_status=task_status,
        )

    async with trio.open_nursery() as nursery:
        try:
            binds = await nursery.start(started)
        except OSError as exc:
            raise ConfigError(f"cannot serve the API on {listen}: {exc.strerror}") from None
        bound = binds[0].removeprefix("http://") if binds else listen
        if listen.startswith("unix:"):
            os.chmod(listen.removeprefix("unix:"), 0o600)
            bound = listen
        log.info("API on %s", bound)
        task_status.started(bound)
