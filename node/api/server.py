"""Serving the API with Hypercorn's trio worker (on loopback unless allowed: see
`node.api.access`)."""

from __future__ import annotations

import logging
import os

import trio
from fastapi import FastAPI
from hypercorn.config import Config
from hypercorn.trio import serve

from node.api.access import check_api_address
from node.api.limits import MAX_HEAD_BYTES
from node.errors import ConfigError

__all__ = ["serve_api"]

log = logging.getLogger("trustnode.api")


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
    # The request head (line, query, headers) is bounded before the app runs;
    # bodies and requests in flight are bounded by `node.api.limits`.
    config.h11_max_incomplete_size = MAX_HEAD_BYTES
    config.h2_max_header_list_size = MAX_HEAD_BYTES
    # No `read_timeout`: Hypercorn applies it while a request is being answered too,
    # so a trust computation longer than it would lose its answer.

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
