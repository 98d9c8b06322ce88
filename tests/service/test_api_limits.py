"""Every request dimension of the local API is bounded (issue 21, defect 9)."""

from __future__ import annotations

import itertools
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from node.api.limits import (
    MAX_BODY_BYTES,
    MAX_HEADERS,
    MAX_IMPORT_BODY_BYTES,
    MAX_QUERY_BYTES,
    RequestLimits,
)

Message = MutableMapping[str, Any]


class Echo:
    """An ASGI app that reads the whole body and answers its length (or waits first)."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        self.release = trio.Event()
        self.hold = False

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        if self.hold:
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


class Client:
    """Feeds a request to an ASGI app chunk by chunk, counting what it read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.read = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.read >= len(self._chunks):
            return {"type": "http.disconnect"}
        chunk = self._chunks[self.read]
        self.read += 1
        return {"type": "http.request", "body": chunk, "more_body": self.read < len(self._chunks)}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def code(self) -> str:
        return str(json.loads(self.sent[1]["body"])["error"]["code"])


def scope(path: str = "/v1/trust", *, headers: list[tuple[bytes, bytes]] | None = None,
          query: bytes = b"") -> Message:  # fmt: skip
    return {"type": "http", "method": "POST", "path": path, "query_string": query,
            "headers": headers or []}  # fmt: skip


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = Echo()
    client = Client([b"x" * 1024])
    length = str(300 * 2**20).encode()
    await RequestLimits(app)(scope(headers=[(b"content-length", length)]), client.receive,
                             client.send)  # fmt: skip
    assert (client.status, client.code) == (413, "payload_too_large")
    assert client.read == 0
    assert app.calls == 0


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    app = Echo()
    chunks = [b"x" * 65536] * 800  # a 50 MiB body with no Content-Length
    client = Client(chunks)
    await RequestLimits(app)(scope(), client.receive, client.send)
    assert (client.status, client.code) == (413, "payload_too_large")
    assert client.read <= MAX_BODY_BYTES // 65536 + 1  # it stopped reading at the limit
    assert app.calls == 0


async def test_an_import_may_be_larger_but_is_bounded_too() -> None:
    big = [b"x" * 65536] * (MAX_BODY_BYTES // 65536 + 4)
    app = Echo()
    client = Client(big)
    await RequestLimits(app)(scope("/v1/import"), client.receive, client.send)
    assert client.status == 200
    over = Client([b"x" * 65536] * (MAX_IMPORT_BODY_BYTES // 65536 + 1))
    await RequestLimits(Echo())(scope("/v1/import"), over.receive, over.send)
    assert over.status == 413


async def test_long_queries_and_many_headers_are_refused() -> None:
    app = Echo()
    client = Client([b""])
    await RequestLimits(app)(scope(query=b"a" * (MAX_QUERY_BYTES + 1)), client.receive,
                             client.send)  # fmt: skip
    assert (client.status, client.code) == (414, "uri_too_long")
    headers = [(b"x-h%d" % n, b"v") for n in range(MAX_HEADERS + 1)]
    client = Client([b""])
    await RequestLimits(app)(scope(headers=headers), client.receive, client.send)
    assert (client.status, client.code) == (431, "headers_too_large")
    client = Client([b""])
    await RequestLimits(app)(scope(headers=[(b"x-big", b"v" * 9000)]), client.receive,
                             client.send)  # fmt: skip
    assert client.status == 431
    assert app.calls == 0


async def test_requests_over_the_concurrency_bound_are_told_to_retry() -> None:
    app = Echo()
    app.hold = True
    limits = RequestLimits(app, max_concurrent=2)
    held = [Client([b"{}"]) for _ in range(2)]
    async with trio.open_nursery() as nursery:
        for client in held:
            nursery.start_soon(limits, scope(), client.receive, client.send)
        await trio.testing.wait_all_tasks_blocked()
        extra = Client([b"{}"])
        await limits(scope(), extra.receive, extra.send)
        assert (extra.status, extra.code) == (503, "busy")
        assert any(name == b"retry-after" for name, _ in extra.sent[0]["headers"])
        app.release.set()
    assert [c.status for c in held] == [200, 200]
    after = Client([b"{}"])
    await limits(scope(), after.receive, after.send)  # the count went back down
    assert after.status == 200


@pytest.mark.slow
@given(
    body=st.binary(max_size=MAX_BODY_BYTES // 8),
    cuts=st.lists(st.integers(min_value=0, max_value=MAX_BODY_BYTES // 8), max_size=8),
)
def test_a_body_within_the_limit_reaches_the_app_whole(body: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    chunks = [body[a:b] for a, b in itertools.pairwise(points)] or [b""]
    app = Echo()
    client = Client(chunks)
    trio.run(RequestLimits(app), scope(), client.receive, client.send)
    assert client.status == 200
    assert app.bodies == [body]


def test_the_cli_splits_an_import_under_the_body_limit() -> None:
    from node.api.models import MAX_IMPORT
    from node.cli.member import _import_chunks

    envelopes = [bytes([n % 256]) * 1000 for n in range(12_000)]  # 2000 hex characters each
    chunks = _import_chunks(envelopes)
    assert [e for _, chunk in chunks for e in chunk] == [e.hex() for e in envelopes]
    for start, chunk in chunks:
        assert chunk[0] == envelopes[start].hex()
        assert len(chunk) <= MAX_IMPORT
        assert len(json.dumps({"envelopes": chunk})) <= MAX_IMPORT_BODY_BYTES
    assert len(_import_chunks([b"\x01"] * (MAX_IMPORT + 1))) == 2
    assert _import_chunks([]) == []
