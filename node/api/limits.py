"""Bounds on every request to the local API, checked before the app sees it.

The API had none: a 300 MB POST to `/v1/trust` grew the daemon from 115 MB
to 1.26 GB before it answered 422. `RequestLimits` is an ASGI middleware (so
the daemon and the CLI's in-process path share it) that refuses, with the
API's JSON error and without reading further:

* a body over its route's limit (`MAX_BODY_BYTES`; `/v1/import` takes
  `MAX_IMPORT_BODY_BYTES`): 413 `payload_too_large`, from `Content-Length`
  before a byte of the body is read, and by counting for a chunked or
  streamed body, which is held only up to the limit;
* a query string over `MAX_QUERY_BYTES`: 414 `uri_too_long`;
* more than `MAX_HEADERS` headers or `MAX_HEADER_BYTES` of them: 431
  `headers_too_large` (Hypercorn already refuses a request head over
  `MAX_HEAD_BYTES` before any of this runs: see `node.api.server`);
* more than `MAX_CONCURRENT` requests in flight: 503 `busy`, with `Retry-After`.

SECURITY.md lists these limits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_CONCURRENT",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_HEAD_BYTES",
    "MAX_IMPORT_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "RequestLimits",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024  # the largest attest request is under 4 KiB
# `trustnode import` sends an export file in requests of at most this size.
MAX_IMPORT_BODY_BYTES = 8 * 1024 * 1024
MAX_QUERY_BYTES = 4096
MAX_HEADERS = 64
MAX_HEADER_BYTES = 8 * 1024
MAX_HEAD_BYTES = 16 * 1024  # request line and headers, as Hypercorn reads them
MAX_CONCURRENT = 32
_LARGE_BODY_PATHS = frozenset({"/v1/import"})


class _TooLargeError(Exception):
    """The body passed its limit while we read it."""


class RequestLimits:
    """ASGI middleware: refuse requests over the module's limits (see its doc)."""

    def __init__(self, app: App, *, max_concurrent: int = MAX_CONCURRENT) -> None:
        self._app = app
        self._max_concurrent = max_concurrent
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, read its body within the limit, then run the app."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        self._in_flight += 1
        try:
            await self._bounded(scope, receive, send)
        finally:
            self._in_flight -= 1

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """Why the request head is refused, if it is: (status, code, message)."""
        if self._in_flight >= self._max_concurrent:
            return 503, "busy", f"more than {self._max_concurrent} requests at once: retry"
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            return 414, "uri_too_long", f"the query is longer than {MAX_QUERY_BYTES} bytes"
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        size = sum(len(name) + len(value) for name, value in headers)
        if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
            return (
                431,
                "headers_too_large",
                (f"at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all"),
            )
        limit = _body_limit(scope)
        length = _content_length(headers)
        if length is not None and length > limit:
            return 413, "payload_too_large", f"the body is larger than {limit} bytes"
        return None

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = _body_limit(scope)
        try:
            body = await _read_body(receive, limit=limit)
        except _TooLargeError:
            await _refuse(send, 413, "payload_too_large", f"the body is larger than {limit} bytes")
            return
        if body is None:
            return  # the client went away before it finished sending
        replayed = False

        async def replay() -> Message:
            # The body we held, once; then whatever the server says next (a disconnect).
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


def _body_limit(scope: Scope) -> int:
    return MAX_IMPORT_BODY_BYTES if scope.get("path") in _LARGE_BODY_PATHS else MAX_BODY_BYTES


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared body length; a malformed one counts as too large."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else MAX_IMPORT_BODY_BYTES + 1
    return None


async def _read_body(receive: Receive, *, limit: int) -> bytes | None:
    """The whole body (None if the client left first), or `_TooLargeError` as soon as
    it passes `limit`: never more than `limit` bytes are held."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # what is left of the body is not read
    ]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
