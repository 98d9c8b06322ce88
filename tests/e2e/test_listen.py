"""A client connects to a running `trustnode listen` process over real loopback TCP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from node.home.keyfile import save_key
from node.net.transport import open_secure_stream
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.events import NeedData
from protocol.handshake import Role
from protocol.identity import IdentityKey, encode_identity_text
from protocol.wire import Hello, MessageReader, Push, encode_message

pytestmark = pytest.mark.slow
COMMUNITY = Community(id=bytes(range(32)), keys=(bytes([7]) * 32,))


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], int, IdentityKey]:
    node_key = IdentityKey.generate()
    save_key(node_key, tmp_path / "node.key")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from node.cli import main; main()",
            "listen",
            "--key",
            str(tmp_path / "node.key"),
            "--community-id",
            COMMUNITY.id.hex(),
            "--community-key",
            COMMUNITY.key.hex(),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("listening on 127.0.0.1:"), first
    port = int(first.split()[2].rsplit(":", 1)[1])
    return process, port, node_key


def test_client_handshakes_with_a_running_node(tmp_path: Path) -> None:
    process, port, node_key = _start(tmp_path)
    me = IdentityKey.generate()

    async def client() -> None:
        with trio.fail_after(20):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            stream = await open_secure_stream(
                tcp, role=Role.INITIATOR, community=COMMUNITY, identity_key=me
            )
            assert stream.peer == node_key.identity
            reader = MessageReader()
            reader.receive_data(await stream.receive_some())
            hello = reader.next_event()
            assert isinstance(hello, Hello)
            assert hello.agent.startswith("trustnode-listen")
            await stream.send_all(encode_message(Push(envelopes=(b"x",))))
            await stream.aclose()
            assert isinstance(reader.next_event(), NeedData)

    async def outsider() -> None:
        wrong = Community(id=COMMUNITY.id, keys=(bytes([8]) * 32,))
        with trio.fail_after(20):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            with pytest.raises(RemoteProtocolError):
                await open_secure_stream(tcp, role=Role.INITIATOR, community=wrong, identity_key=me)

    try:
        trio.run(client)
        trio.run(outsider)
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    peer = encode_identity_text(me.identity)
    assert lines[:3] == [f"peer {peer} connected", f"peer {peer} sent push", f"peer {peer} closed"]
    assert lines[3].startswith("refused ")
    assert lines[3].endswith("decrypt_failed")
