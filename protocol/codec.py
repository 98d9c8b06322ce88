"""The one narrow door to msgpack: canonical packing and strict, bounded unpacking.

msgpack ships no type information and documents that it may raise any
exception on bad input, so this is the only module of `protocol/` that imports
it. Everything that leaves here is either a plain Python value of the few types
the protocol uses (None, int, str, bytes, tuples of those) or a `DecodeError`.

What "canonical" means is fixed in SPEC §2: every value in its shortest msgpack
form, which is exactly what `msgpack.packb(..., use_bin_type=True)` produces for
these types. Decoders never repair; they re-encode what they understood and
compare bytes (SPEC §2.3).
"""

from __future__ import annotations

from typing import TypeAlias

import msgpack

from protocol.errors import DecodeError, Reason

__all__ = ["Value", "pack", "unpack"]

Value: TypeAlias = "int | str | bytes | tuple[Value, ...] | None"
# `msgpack.packb` starts each call with a 1 MiB buffer, and a fresh `Packer`
# per call still costs as much as packing an envelope. What we pack is mostly a
# few hundred bytes (an envelope re-encoded to check its canonical form, a
# slot's key to hash), once per record received: one `Packer`, reset after each
# value, packs them in half the time (1.0 -> 0.55 us, measured, issue 28). It
# holds no state between calls (autoreset empties its buffer, also after a
# refused value), and its `pack` runs in C without releasing the GIL and with
# no callback into Python (no `default`), so threads cannot interleave in it.
_BUFFER_BYTES = 1024
_pack = msgpack.Packer(use_bin_type=True, buf_size=_BUFFER_BYTES, autoreset=True).pack


def pack(value: Value) -> bytes:
    """Encode `value` in canonical msgpack (SPEC §2).

    Raises:
        LocalProtocolError: never for the types of `Value`; other types are a bug
            of the caller and surface as msgpack's own `TypeError`.
    """
    packed: bytes = _pack(value)
    return packed


def unpack(data: bytes) -> object:
    """Decode exactly one msgpack value from `data`, refusing anything extra.

    The result is untyped (`object`): callers check every field's type with
    `type(x) is ...` (msgpack returns `bool` for true/false, which `isinstance`
    would confuse with `int`). Maps decode to `dict`, floats to `float` and
    extension types to msgpack objects; callers reject them by type.

    Args:
        data: the bytes; the caller has already bounded their length, which also
            bounds every string, binary and container inside (msgpack's limits
            default to the input's length), so memory stays linear in `data`.

    Raises:
        DecodeError: `TRAILING_BYTES` when a valid value is followed by more
            bytes; `MALFORMED` for anything msgpack cannot decode (truncated
            input, invalid UTF-8 in a string, an unused type byte).
    """
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
        )
    except msgpack.ExtraData as exc:
        extra = len(data) - len(exc.extra)
        raise DecodeError(
            Reason.TRAILING_BYTES, f"{len(exc.extra)} bytes after a value of {extra} bytes"
        ) from exc
    except Exception as exc:  # msgpack may raise any type on bad input
        raise DecodeError(
            Reason.MALFORMED, f"not one msgpack value ({len(data)} bytes, {type(exc).__name__})"
        ) from exc
