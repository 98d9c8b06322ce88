"""Fuzz targets: every decoder that sees outside bytes, and the contract each must keep.

Contract (DESIGN §2, STYLE §2): any input yields a value or a *typed* error —
the target's `allowed` exceptions — never another exception, a hang or
unbounded memory. `tests/fuzz/harness.py` runs a target under atheris
(coverage-guided); `tests/fuzz/test_fuzz.py` replays the seeds and every
crasher ever found, and runs each target briefly in CI.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node.errors import ConfigError
from node.home.config import new_community, parse_config, render_config
from protocol.attestation import decode_attestation
from protocol.channel import ChannelHandshake, Community
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.events import NeedData
from protocol.export import decode_export, encode_export
from protocol.handshake import KeyPair, Role
from protocol.identity import IdentityKey
from protocol.invite import Invite, decode_invite, sign_invite
from protocol.sync import Reconciler
from protocol.wire import (
    Deliver,
    Graft,
    Graft8,
    Hello,
    IHave,
    IHave8,
    MessageReader,
    Push,
    Routes,
    Want,
    encode_message,
)

__all__ = ["TARGETS", "Target"]

ROOT = Path(__file__).resolve().parents[2]
KEY = IdentityKey.from_seed(bytes([9]) * 32)
COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))
_POSITIVE = json.loads((ROOT / "protocol" / "vectors" / "attestations-v1.json").read_text())


@dataclass(frozen=True)
class Target:
    """A decoder under test: its entry point, the errors it may raise, and seeds."""

    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]


def _envelope(data: bytes) -> object:
    return decode_attestation(data)


def _envelope_seeds() -> list[bytes]:
    return [bytes.fromhex(v["envelope_hex"]) for v in _POSITIVE["positive"]]


def _wire(data: bytes) -> object:
    reader = MessageReader()
    reader.receive_data(data)
    messages = []
    while not isinstance(message := reader.next_event(), NeedData):
        messages.append(message)
    return messages


def _wire_seeds() -> list[bytes]:
    envelope = _envelope_seeds()[0]
    return [
        encode_message(Hello(capabilities=("push",), agent="fuzz")),
        encode_message(Push(envelopes=(envelope,))),
        encode_message(Want(ids=(bytes(32),))) + encode_message(IHave(ids=(bytes(32),) * 3)),
        encode_message(Graft(ids=(bytes(32),))) + encode_message(Deliver(envelopes=(envelope,))),
        encode_message(IHave8(prefixes=bytes(16))) + encode_message(Graft8(prefixes=bytes(8))),
        encode_message(Routes(entries=bytes(8) + b"\x81" + bytes(8) + b"\x7f")),
    ]


def _side(role: Role) -> ChannelHandshake:
    first = 1 if role is Role.RESPONDER else 3  # fixed keys: the same input, the same run
    return ChannelHandshake(
        role=role, community=COMMUNITY, identity_key=KEY,
        static=KeyPair.from_private(bytes([first]) * 32),
        ephemeral=KeyPair.from_private(bytes([first + 1]) * 32),
    )  # fmt: skip


def _handshake(data: bytes) -> object:
    """A responder receiving `data` as message 1, then an initiator as message 2."""
    with contextlib.suppress(RemoteProtocolError):
        _side(Role.RESPONDER).receive(data)
    initiator = _side(Role.INITIATOR)
    initiator.start()
    return initiator.receive(data)


def _handshake_seeds() -> list[bytes]:
    return [_side(Role.INITIATOR).start(), bytes(96)]


def _invite(data: bytes) -> object:
    return decode_invite(data.decode("latin-1"))


def _invite_seeds() -> list[bytes]:
    made = Invite(community_id=bytes(32), community_key=bytes([5]) * 32,
                  bootstrap=("127.0.0.1:7400",), inviter=KEY.identity)  # fmt: skip
    return [sign_invite(made, KEY).encode()]


def _export(data: bytes) -> object:
    return decode_export(data)


def _export_seeds() -> list[bytes]:
    return [encode_export(bytes(32), _envelope_seeds()[:3])]


def _config(data: bytes) -> object:
    return parse_config(data, data_dir=Path("/nonexistent"))


def _config_seeds() -> list[bytes]:
    return [render_config(new_community("fuzz", data_dir=Path("/x"))).encode()]


def _sync(data: bytes) -> object:
    reconciler = Reconciler([(n, bytes([n]) * 32) for n in range(1, 40)], push_missing=True)
    return reconciler.receive(data)


def _sync_seeds() -> list[bytes]:
    # Full forms (id list, fingerprints) and compact ones (prefix lists, wanted,
    # short fingerprints), each as a first message and as a reply.
    small, large = [(1, bytes(32))], [(n, bytes([n]) * 32) for n in range(1, 60)]
    seeds = []
    for compact in (False, True):
        for items in (small, large):
            side = Reconciler(items, push_missing=True, compact=compact)
            first = side.initiate()
            seeds.append(first)
            peer = Reconciler(items[::2], push_missing=True, compact=compact)
            reply = peer.receive(first)
            if reply is not None:
                seeds.append(reply)
    # A prefix list answered with `wanted` (the lister holds ids the peer lacks).
    lister = Reconciler(large[:30], push_missing=True, compact=True)
    answer = Reconciler(large[15:45], push_missing=True, compact=True).receive(lister.initiate())
    # Sketch forms: a counted ladder, and the sketches that answer it.
    wide = [(n, n.to_bytes(4, "big") * 8) for n in range(1, 1200)]
    sketcher = Reconciler(wide, push_missing=True, compact=True, sketch=True)
    lacking = [x for x in wide if x[0] % 40]
    ladder = Reconciler(lacking, push_missing=True, compact=True, sketch=True).receive(
        sketcher.initiate()
    )
    sketches = sketcher.receive(ladder) if ladder is not None else None
    extra = [m for m in (ladder, sketches) if m is not None]
    return [*seeds, *([answer] if answer is not None else []), *extra]


TARGETS: dict[str, Target] = {
    "envelope": Target(_envelope, (RemoteProtocolError,), _envelope_seeds),
    "wire": Target(_wire, (RemoteProtocolError,), _wire_seeds),
    "handshake": Target(_handshake, (RemoteProtocolError, LocalProtocolError), _handshake_seeds),
    "invite": Target(_invite, (RemoteProtocolError,), _invite_seeds),
    "export": Target(_export, (RemoteProtocolError,), _export_seeds),
    "config": Target(_config, (ConfigError,), _config_seeds),
    "sync": Target(_sync, (RemoteProtocolError,), _sync_seeds),
}


def check(name: str, data: bytes) -> None:
    """Run target `name` on `data`; an allowed error is fine, anything else propagates."""
    target = TARGETS[name]
    with contextlib.suppress(*target.allowed):
        target.run(data)
