"""Wire messages between peers and the length-prefixed framing that carries them.

Inside a secure channel (the Noise transport, a byte stream), peers exchange
*messages*: a 4-byte big-endian length and that many bytes of canonical msgpack
`[wire_version, type, ...fields]` (SPEC §9). This module owns their types, their
encoding, and `MessageReader`, an h11-style sans-I/O parser: feed it bytes with
`receive_data`, pull messages with `next_event`. It never buffers more than the
configured maximum message size plus one length prefix, refuses an oversized
message as soon as its length prefix arrives, and stays in `ERROR` after any
failure, so the shell must close the connection.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TypeAlias

from protocol.attestation import ID_PREFIX_BYTES, MAX_ENVELOPE_BYTES, split_id_prefixes
from protocol.codec import Value, pack, unpack
from protocol.errors import DecodeError, FieldError, LocalProtocolError, Reason, require
from protocol.events import NEED_DATA, NeedData
from protocol.routes import ROUTE_ENTRY_BYTES
from protocol.statement import NAME_PATTERN

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_DIALBACK_ADDRESSES",
    "MAX_PEER_ADDRESSES",
    "MAX_PUNCH_ADDRESSES",
    "MAX_PUSH_ENVELOPES",
    "MAX_WANT_IDS",
    "PUNCH_NONCE_BYTES",
    "WIRE_VERSION",
    "CircuitClose",
    "CircuitData",
    "CircuitOpen",
    "Deliver",
    "DialBack",
    "DialBackResult",
    "ErrorMessage",
    "Graft",
    "Graft8",
    "Hello",
    "IHave",
    "IHave8",
    "Message",
    "MessageReader",
    "MessageType",
    "Peers",
    "Prune",
    "PunchConnect",
    "PunchSync",
    "Push",
    "ReaderState",
    "Redeem",
    "Routes",
    "Sync",
    "Want",
    "decode_message",
    "encode_message",
]

WIRE_VERSION = 1
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
MAX_PUSH_ENVELOPES = 1000
MAX_WANT_IDS = 4096
_ID_BYTES = 32
_LENGTH_BYTES = 4
_MAX_CAPABILITIES = 32
_MAX_AGENT_BYTES = 64
_MAX_DETAIL_BYTES = 256
MAX_PEER_ADDRESSES = 32
MAX_DIALBACK_ADDRESSES = 8
DIALBACK_NONCE_BYTES = 8
CIRCUIT_ID_BYTES = 8
MAX_CIRCUIT_DATA = 65535
INVITE_NONCE_BYTES = 16  # an invite's nonce (SPEC §12)
PUNCH_NONCE_BYTES = 8  # one punch round's nonce (SPEC §15.4)
MAX_PUNCH_ADDRESSES = 4  # addresses in one punch_connect (SPEC §15.4)
_ADDRESS = re.compile(r"[\x21-\x7e]{1,255}")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TEXT = re.compile(r"[\x20-\x7e]*")


class MessageType(enum.IntEnum):
    """Message types of wire version 1, with their codes (SPEC §9.2)."""

    HELLO = 1
    ERROR = 2
    PUSH = 3
    SYNC = 4
    WANT = 5
    IHAVE = 6
    PRUNE = 7
    PEERS = 8
    GRAFT = 9
    DELIVER = 10
    IHAVE8 = 11
    GRAFT8 = 12
    ROUTES = 13
    DIALBACK = 14
    DIALBACK_RESULT = 15
    CIRCUIT_OPEN = 16
    CIRCUIT_DATA = 17
    CIRCUIT_CLOSE = 18
    REDEEM = 19
    PUNCH_CONNECT = 20
    PUNCH_SYNC = 21


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The first message on a connection: what this peer speaks and can do."""

    min_version: int = WIRE_VERSION
    max_version: int = WIRE_VERSION
    capabilities: tuple[str, ...] = ()
    agent: str = ""

    def __post_init__(self) -> None:
        # Every type check before any range check, as for attestations (SPEC §2.5).
        versions = (self.min_version, self.max_version)
        require(all(type(v) is int for v in versions), Reason.BAD_FIELD, "versions are integers")
        require(type(self.capabilities) is tuple, Reason.BAD_FIELD, "capabilities is an array")
        strings = all(type(name) is str for name in self.capabilities)
        require(strings, Reason.BAD_FIELD, "a capability is a string")
        require(type(self.agent) is str, Reason.BAD_FIELD, "agent is a string")
        require(1 <= self.min_version <= self.max_version < 2**16, Reason.OUT_OF_RANGE, "versions")
        require(len(self.capabilities) <= _MAX_CAPABILITIES, Reason.OUT_OF_RANGE, "capabilities")
        names = all(NAME_PATTERN.fullmatch(name) is not None for name in self.capabilities)
        require(names, Reason.OUT_OF_RANGE, "capability name")
        require(
            len(self.agent) <= _MAX_AGENT_BYTES and _TEXT.fullmatch(self.agent) is not None,
            Reason.OUT_OF_RANGE,
            "agent is printable ASCII, at most 64 bytes",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorMessage:
    """Why the sender is about to close: a stable reason code and a short detail."""

    code: str
    detail: str = ""

    def __post_init__(self) -> None:
        require(type(self.code) is str, Reason.BAD_FIELD, "code is a string")
        require(type(self.detail) is str, Reason.BAD_FIELD, "detail is a string")
        require(_CODE.fullmatch(self.code) is not None, Reason.OUT_OF_RANGE, "code")
        require(
            len(self.detail) <= _MAX_DETAIL_BYTES and _TEXT.fullmatch(self.detail) is not None,
            Reason.OUT_OF_RANGE,
            "detail is printable ASCII, at most 256 bytes",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    """Attestation envelopes sent eagerly; each is decoded and verified by the receiver."""

    envelopes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_envelopes(self.envelopes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Envelopes sent on request: answers to `want` and `graft`, records of a sync session.

    The same rules as `push`, but not forwarding: the receiver takes no push-tree
    decision on them (a copy among them is no reason to PRUNE the link).
    """

    envelopes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_envelopes(self.envelopes)


def _check_envelopes(envelopes: object) -> None:
    require(type(envelopes) is tuple, Reason.BAD_FIELD, "envelopes is an array")
    assert isinstance(envelopes, tuple)
    binary = all(type(envelope) is bytes for envelope in envelopes)
    require(binary, Reason.BAD_FIELD, "an envelope is binary")
    require(1 <= len(envelopes) <= MAX_PUSH_ENVELOPES, Reason.OUT_OF_RANGE, "envelope count")
    small = all(len(envelope) <= MAX_ENVELOPE_BYTES for envelope in envelopes)
    require(small, Reason.OUT_OF_RANGE, "envelope size")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync:
    """One step of a reconciliation session (SPEC §13); `payload` None ends it."""

    payload: bytes | None

    def __post_init__(self) -> None:
        require(
            self.payload is None or type(self.payload) is bytes, Reason.BAD_FIELD, "sync payload"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Want:
    """Attestation ids the sender asks for (it learned it lacks them)."""

    ids: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_ids(self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Graft:
    """Plumtree's GRAFT: send me these ids, and push to me eagerly from now on.

    Apart from `Want`, which anti-entropy also sends: a fetch that repairs a
    gap must not rejoin the push tree, or every repair closes a cycle in it.
    """

    ids: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_ids(self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prefixes:
    """Attestation ids shortened to their first 8 bytes, back to back."""

    prefixes: bytes

    def __post_init__(self) -> None:
        _check_prefixes(self.prefixes)

    def split(self) -> list[bytes]:
        """The 8-byte prefixes, in order."""
        return split_id_prefixes(self.prefixes)


@dataclass(frozen=True, slots=True, kw_only=True)
class IHave8(_Prefixes):
    """`ihave` with the first 8 bytes of each id, back to back: a quarter of the bytes.

    Announcements go to every lazy peer for every new attestation, so their
    size matters more than anything else the push tree sends. A prefix that
    matches something the receiver holds is taken as that attestation: a
    collision (64 bits) costs at worst a miss that anti-entropy repairs.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Graft8(_Prefixes):
    """`graft` by the 8-byte prefixes of an `ihave8`: the announcer knows the full ids."""


def _check_prefixes(prefixes: object) -> None:
    require(type(prefixes) is bytes, Reason.BAD_FIELD, "prefixes is binary")
    assert isinstance(prefixes, bytes)
    count, rest = divmod(len(prefixes), ID_PREFIX_BYTES)
    require(rest == 0 and 1 <= count <= MAX_WANT_IDS, Reason.OUT_OF_RANGE, "1..4096 prefixes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Routes:
    """Distance-vector routes: 9 bytes each (SPEC §9.4, `protocol.routes`).

    An 8-byte identity prefix, then one byte: the top bit says "you are my
    parent towards this member", the rest is the distance in hops (127:
    withdrawn).
    """

    entries: bytes

    def __post_init__(self) -> None:
        require(type(self.entries) is bytes, Reason.BAD_FIELD, "entries is binary")
        count, rest = divmod(len(self.entries), ROUTE_ENTRY_BYTES)
        require(rest == 0 and 1 <= count <= MAX_WANT_IDS, Reason.OUT_OF_RANGE, "1..4096 routes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Redeem:
    """A joiner presents its single-use invite's nonce to the inviter (SPEC §9.2, §12).

    Sent only to the invite's inviter, and only when its hello named `invites`;
    the inviter binds the nonce to the sender's identity (the handshake proved
    it) or refuses with `invite_used` / `invite_expired`.
    """

    nonce: bytes

    def __post_init__(self) -> None:
        require(type(self.nonce) is bytes, Reason.BAD_FIELD, "nonce is binary")
        require(len(self.nonce) == INVITE_NONCE_BYTES, Reason.OUT_OF_RANGE, "a nonce has 16 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class IHave:
    """Ids of new attestations announced lazily: the receiver wants the ones it lacks."""

    ids: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_ids(self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prune:
    """Stop pushing payloads to me eagerly; announce them (the receiver saw duplicates)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Peers:
    """Addresses where members of this community accept connections (peer exchange).

    Hearsay: the receiver only *tries* them; the handshake proves membership.
    """

    addresses: tuple[str, ...]

    def __post_init__(self) -> None:
        require(type(self.addresses) is tuple, Reason.BAD_FIELD, "addresses is an array")
        strings = all(type(address) is str for address in self.addresses)
        require(strings, Reason.BAD_FIELD, "an address is a string")
        require(len(self.addresses) <= MAX_PEER_ADDRESSES, Reason.OUT_OF_RANGE, "0..32 addresses")
        require(
            all(_ADDRESS.fullmatch(address) is not None for address in self.addresses),
            Reason.OUT_OF_RANGE,
            "an address is 1..255 visible ASCII characters",
        )


def _typed_addresses(addresses: object, what: str) -> None:
    require(type(addresses) is tuple, Reason.BAD_FIELD, f"{what} is an array")
    assert isinstance(addresses, tuple)
    strings = all(type(address) is str for address in addresses)
    require(strings, Reason.BAD_FIELD, f"an address in {what} is a string")


def _addresses_in_range(addresses: tuple[str, ...], what: str, low: int, high: int) -> None:
    require(low <= len(addresses) <= high, Reason.OUT_OF_RANGE, f"{low}..{high} {what}")
    require(
        all(_ADDRESS.fullmatch(address) is not None for address in addresses),
        Reason.OUT_OF_RANGE,
        "an address is 1..255 visible ASCII characters",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DialBack:
    """Dial me back at these addresses and tell me which reached me (SPEC §15.2).

    AutoNAT's question: a node cannot tell from inside whether its addresses
    can be dialled from outside; a peer that tries them can.
    """

    nonce: bytes
    addresses: tuple[str, ...]

    def __post_init__(self) -> None:
        # Every type check before any range check (SPEC §9.2).
        require(type(self.nonce) is bytes, Reason.BAD_FIELD, "nonce is binary")
        _typed_addresses(self.addresses, "addresses")
        _addresses_in_range(self.addresses, "addresses", 1, MAX_DIALBACK_ADDRESSES)
        require(len(self.nonce) == DIALBACK_NONCE_BYTES, Reason.OUT_OF_RANGE, "nonce of 8 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class DialBackResult:
    """The answer to a `dialback`: which addresses reached the asker, which did not,
    and the asker's address as this connection shows it (`observed`, "" if unknown)."""

    nonce: bytes
    reached: tuple[str, ...]
    failed: tuple[str, ...]
    observed: str

    def __post_init__(self) -> None:
        require(type(self.nonce) is bytes, Reason.BAD_FIELD, "nonce is binary")
        require(type(self.observed) is str, Reason.BAD_FIELD, "observed is a string")
        _typed_addresses(self.reached, "reached")
        _typed_addresses(self.failed, "failed")
        _addresses_in_range(self.reached, "reached", 0, MAX_DIALBACK_ADDRESSES)
        _addresses_in_range(self.failed, "failed", 0, MAX_DIALBACK_ADDRESSES)
        require(len(self.nonce) == DIALBACK_NONCE_BYTES, Reason.OUT_OF_RANGE, "nonce of 8 bytes")
        require(
            self.observed == "" or _ADDRESS.fullmatch(self.observed) is not None,
            Reason.OUT_OF_RANGE,
            "observed is empty or 1..255 visible ASCII characters",
        )


def _check_circuit(circuit: object, other: object, kind: type, name: str) -> None:
    """A circuit message's two field types, then its circuit id's length (SPEC §9.2 order)."""
    require(type(circuit) is bytes, Reason.BAD_FIELD, "circuit is binary")
    require(type(other) is kind, Reason.BAD_FIELD, f"{name} is {kind.__name__}")
    assert isinstance(circuit, bytes)
    require(len(circuit) == CIRCUIT_ID_BYTES, Reason.OUT_OF_RANGE, "circuit of 8 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitOpen:
    """Open a relayed circuit (SPEC §15.3): to a relay, "connect me to `peer`"; from a
    relay, "`peer` connects to you". The two ends then run their own handshake inside."""

    circuit: bytes
    peer: bytes

    def __post_init__(self) -> None:
        _check_circuit(self.circuit, self.peer, bytes, "peer")
        require(len(self.peer) == _ID_BYTES, Reason.OUT_OF_RANGE, "peer of 32 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitData:
    """Bytes of a circuit: the ends' handshake and records, opaque to the relay."""

    circuit: bytes
    data: bytes

    def __post_init__(self) -> None:
        _check_circuit(self.circuit, self.data, bytes, "data")
        require(1 <= len(self.data) <= MAX_CIRCUIT_DATA, Reason.OUT_OF_RANGE, "1..65535 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitClose:
    """The circuit ends (or is refused), with a reason code (`quota`, `refused`, ...)."""

    circuit: bytes
    code: str

    def __post_init__(self) -> None:
        _check_circuit(self.circuit, self.code, str, "code")
        require(_CODE.fullmatch(self.code) is not None, Reason.OUT_OF_RANGE, "code")


@dataclass(frozen=True, slots=True, kw_only=True)
class PunchConnect:
    """One side's addresses for a hole punch (SPEC §15.4; DCUtR's CONNECT): the
    initiator's opens a round, the responder's answer carries the same nonce.

    Hearsay like `peers`: the receiver dials only those its rules find plausible
    (`protocol.punch.plausible_addresses`), and only during the round."""

    nonce: bytes
    addresses: tuple[str, ...]

    def __post_init__(self) -> None:
        # Every type check before any range check (SPEC §9.2).
        require(type(self.nonce) is bytes, Reason.BAD_FIELD, "nonce is binary")
        _typed_addresses(self.addresses, "addresses")
        _addresses_in_range(self.addresses, "addresses", 0, MAX_PUNCH_ADDRESSES)
        require(len(self.nonce) == PUNCH_NONCE_BYTES, Reason.OUT_OF_RANGE, "nonce of 8 bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class PunchSync:
    """Dial now (SPEC §15.4; DCUtR's SYNC): the initiator dials half a round trip later."""

    nonce: bytes

    def __post_init__(self) -> None:
        require(type(self.nonce) is bytes, Reason.BAD_FIELD, "nonce is binary")
        require(len(self.nonce) == PUNCH_NONCE_BYTES, Reason.OUT_OF_RANGE, "nonce of 8 bytes")


def _check_ids(ids: object) -> None:
    require(type(ids) is tuple, Reason.BAD_FIELD, "ids is an array")
    assert isinstance(ids, tuple)
    ok = all(type(identifier) is bytes and len(identifier) == _ID_BYTES for identifier in ids)
    require(ok, Reason.BAD_FIELD, "an id has 32 bytes")
    require(1 <= len(ids) <= MAX_WANT_IDS, Reason.OUT_OF_RANGE, "1..4096 ids")


Message: TypeAlias = (
    Hello
    | ErrorMessage
    | Push
    | Sync
    | Want
    | IHave
    | Prune
    | Peers
    | Graft
    | Deliver
    | IHave8
    | Graft8
    | Routes
    | DialBack
    | DialBackResult
    | CircuitOpen
    | CircuitData
    | CircuitClose
    | Redeem
    | PunchConnect
    | PunchSync
)


# The one field of each single-field type, by the class: (type code, field name).
# Encoding and decoding both read it.
_ONE_FIELD: dict[type, tuple[MessageType, str]] = {
    Push: (MessageType.PUSH, "envelopes"),
    Deliver: (MessageType.DELIVER, "envelopes"),
    Sync: (MessageType.SYNC, "payload"),
    Want: (MessageType.WANT, "ids"),
    Graft: (MessageType.GRAFT, "ids"),
    IHave: (MessageType.IHAVE, "ids"),
    Peers: (MessageType.PEERS, "addresses"),
    IHave8: (MessageType.IHAVE8, "prefixes"),
    Graft8: (MessageType.GRAFT8, "prefixes"),
    Routes: (MessageType.ROUTES, "entries"),
    Redeem: (MessageType.REDEEM, "nonce"),
    PunchSync: (MessageType.PUNCH_SYNC, "nonce"),
}


# The same, with the codes as ints: `_fields` runs for every message sent, and
# the most frequent (push, ihave, sync, ...) are all single-field types, so they
# are looked up first, by exact type, before the isinstance chain of the rest.
_ONE_FIELD_CODES: dict[type, tuple[int, str]] = {
    kind: (code.value, name) for kind, (code, name) in _ONE_FIELD.items()
}


# Every other type's fields, in wire order, after the type code.
_MANY_FIELDS: dict[type, tuple[int, tuple[str, ...]]] = {
    Hello: (MessageType.HELLO.value, ("min_version", "max_version", "capabilities", "agent")),
    ErrorMessage: (MessageType.ERROR.value, ("code", "detail")),
    Prune: (MessageType.PRUNE.value, ()),
    DialBack: (MessageType.DIALBACK.value, ("nonce", "addresses")),
    DialBackResult: (
        MessageType.DIALBACK_RESULT.value,
        ("nonce", "reached", "failed", "observed"),
    ),
    CircuitOpen: (MessageType.CIRCUIT_OPEN.value, ("circuit", "peer")),
    CircuitData: (MessageType.CIRCUIT_DATA.value, ("circuit", "data")),
    CircuitClose: (MessageType.CIRCUIT_CLOSE.value, ("circuit", "code")),
    PunchConnect: (MessageType.PUNCH_CONNECT.value, ("nonce", "addresses")),
}


def _fields(message: Message) -> tuple[Value, ...]:
    kind = type(message)
    one = _ONE_FIELD_CODES.get(kind)
    if one is not None:
        return (one[0], getattr(message, one[1]))
    code, names = _MANY_FIELDS[kind]
    return (code, *(getattr(message, name) for name in names))


def encode_message(message: Message) -> bytes:
    """The framed bytes of `message`: 4-byte big-endian length, then canonical msgpack."""
    payload = pack((WIRE_VERSION, *_fields(message)))
    return len(payload).to_bytes(_LENGTH_BYTES, "big") + payload


def decode_message(payload: bytes) -> Message:
    """Decode one message payload (the bytes after the length prefix).

    Raises:
        DecodeError: `MALFORMED`, `TRAILING_BYTES`, `UNKNOWN_VERSION`,
            `UNKNOWN_KIND` (message type), `BAD_FIELD`, `OUT_OF_RANGE` or
            `NON_CANONICAL`.
    """
    obj = unpack(payload)
    if type(obj) is not tuple or len(obj) < 2 or type(obj[0]) is not int:
        raise DecodeError(Reason.MALFORMED, "a message is [version, type, ...]")
    if obj[0] != WIRE_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"wire version {obj[0]}")
    try:
        message = _build(obj[1], obj[2:])
    except FieldError as exc:
        raise DecodeError(exc.reason, str(exc)) from exc
    if pack((WIRE_VERSION, *_fields(message))) != payload:
        raise DecodeError(Reason.NON_CANONICAL, "message is not canonically encoded")
    return message


# The same table by type code, for decoding.
_ONE_FIELD_BY_CODE: dict[int, tuple[type, str]] = {
    code: (kind, name) for kind, (code, name) in _ONE_FIELD.items()
}


# Circuit messages (SPEC §15.3) and punch_connect (§15.4): two fields each, by type code.
_TWO_FIELDS: dict[int, tuple[type, tuple[str, str]]] = {
    MessageType.CIRCUIT_OPEN: (CircuitOpen, ("circuit", "peer")),
    MessageType.CIRCUIT_DATA: (CircuitData, ("circuit", "data")),
    MessageType.CIRCUIT_CLOSE: (CircuitClose, ("circuit", "code")),
    MessageType.PUNCH_CONNECT: (PunchConnect, ("nonce", "addresses")),
}


def _build(code: object, fields: tuple[object, ...]) -> Message:
    if type(code) is not int:
        raise DecodeError(Reason.UNKNOWN_KIND, f"message type {code!r:.16}")
    # Single-field types first (push, ihave, sync, ...: nearly every message), and
    # the error text only made on failure: this runs for every message received.
    if (one := _ONE_FIELD_BY_CODE.get(code)) is not None:
        kind, name = one
        if len(fields) != 1:
            raise FieldError(Reason.BAD_FIELD, f"{MessageType(code).name.lower()} has 1 field")
        message: Message = kind(**{name: fields[0]})  # its own checks validate the value
        return message
    return _build_other(code, fields)


def _build_other(code: int, fields: tuple[object, ...]) -> Message:
    if code == MessageType.HELLO:
        require(len(fields) == 4, Reason.BAD_FIELD, "hello has 4 fields")
        low, high, capabilities, agent = fields
        return Hello(
            min_version=low,  # type: ignore[arg-type]  # checked by Hello itself
            max_version=high,  # type: ignore[arg-type]
            capabilities=capabilities,  # type: ignore[arg-type]
            agent=agent,  # type: ignore[arg-type]
        )
    if code == MessageType.ERROR:
        require(len(fields) == 2, Reason.BAD_FIELD, "error has 2 fields")
        return ErrorMessage(code=fields[0], detail=fields[1])  # type: ignore[arg-type]
    if code == MessageType.PRUNE:
        require(len(fields) == 0, Reason.BAD_FIELD, "prune has no field")
        return Prune()
    if code == MessageType.DIALBACK:
        require(len(fields) == 2, Reason.BAD_FIELD, "dialback has 2 fields")
        return DialBack(nonce=fields[0], addresses=fields[1])  # type: ignore[arg-type]
    if code == MessageType.DIALBACK_RESULT:
        require(len(fields) == 4, Reason.BAD_FIELD, "dialback_result has 4 fields")
        nonce, reached, failed, observed = fields
        return DialBackResult(
            nonce=nonce,  # type: ignore[arg-type]  # checked by DialBackResult itself
            reached=reached,  # type: ignore[arg-type]
            failed=failed,  # type: ignore[arg-type]
            observed=observed,  # type: ignore[arg-type]
        )
    if (two := _TWO_FIELDS.get(code)) is not None:
        kind, (first, second) = two
        if len(fields) != 2:
            raise FieldError(Reason.BAD_FIELD, f"{MessageType(code).name.lower()} has 2 fields")
        built: Message = kind(**{first: fields[0], second: fields[1]})  # checked by the class
        return built
    raise DecodeError(Reason.UNKNOWN_KIND, f"message type {code!r:.16}")


class ReaderState(enum.Enum):
    """`OK` while messages parse; `ERROR` for good after the first failure."""

    OK = "ok"
    ERROR = "error"


class MessageReader:
    """Sans-I/O parser of framed messages (h11's shape).

    Buffering is bounded: at most one length prefix plus `max_message_bytes`,
    and a length above the limit is refused before its body is awaited.
    """

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if not 1 <= max_message_bytes < 2**32:
            raise LocalProtocolError("max_message_bytes must be in 1..2**32-1")
        self._max = max_message_bytes
        self._buffer = bytearray()
        self._state = ReaderState.OK

    @property
    def state(self) -> ReaderState:
        """OK, or ERROR after a failure (then the connection must be closed)."""
        return self._state

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; parsing (and refusing) happens in `next_event`.

        Call `next_event` until it returns `NEED_DATA` before feeding more:
        then the buffer never holds more than one partial message plus the
        bytes of one receive.

        Raises:
            LocalProtocolError: called in the ERROR state.
        """
        if self._state is ReaderState.ERROR:
            raise LocalProtocolError("the reader failed; close the connection")
        self._buffer += data

    def next_event(self) -> Message | NeedData:
        """The next complete message, or `NEED_DATA`.

        Raises:
            DecodeError: `TOO_LARGE` or any reason of `decode_message`; the
                reader is then in ERROR.
            LocalProtocolError: called in the ERROR state.
        """
        if self._state is ReaderState.ERROR:
            raise LocalProtocolError("the reader failed; close the connection")
        length = self._check_length()
        if length is None or len(self._buffer) < _LENGTH_BYTES + length:
            return NEED_DATA
        payload = bytes(self._buffer[_LENGTH_BYTES : _LENGTH_BYTES + length])
        del self._buffer[: _LENGTH_BYTES + length]
        try:
            return decode_message(payload)
        except DecodeError:
            self._state = ReaderState.ERROR
            raise

    def _check_length(self) -> int | None:
        if len(self._buffer) < _LENGTH_BYTES:
            return None
        length = int.from_bytes(self._buffer[:_LENGTH_BYTES], "big")
        if length > self._max:
            # Refused as soon as the prefix arrives: we never wait for such a body.
            self._state = ReaderState.ERROR
            raise DecodeError(Reason.TOO_LARGE, f"message of {length} bytes (max {self._max})")
        if length == 0:
            self._state = ReaderState.ERROR
            raise DecodeError(Reason.MALFORMED, "empty message")
        return length
