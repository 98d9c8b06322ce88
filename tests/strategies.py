"""Hypothesis strategies for the protocol's values (STYLE §6).

They draw keys from a small pool of fixed seeds: signing is deterministic, so a
failing example replays exactly, and slots collide often enough to exercise
supersession.
"""

from __future__ import annotations

import dataclasses
import unicodedata

from hypothesis import strategies as st

from protocol.attestation import MAX_TIME_MS, Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityId, IdentityKey
from protocol.label import MAX_NAME_LABEL_BYTES
from protocol.statement import (
    MAX_VALUE,
    MIN_VALUE,
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Statement,
    Subject,
    Thing,
    Trust,
)

KEYS = tuple(IdentityKey.from_seed(bytes([n]) * 32) for n in range(1, 9))
_KEY_BY_ID = {k.identity: k for k in KEYS}

names = st.from_regex(r"[a-z0-9][a-z0-9._:/-]{0,63}", fullmatch=True)
few_names = st.sampled_from(["general", "carpool", "resident:rue-des-lilas", "co-op.food"])
things = st.from_regex(r"[a-z][a-z0-9+.-]{0,8}:[\x21-\x7e]{1,40}", fullmatch=True).map(Thing)
values = st.integers(MIN_VALUE, MAX_VALUE)
times = st.integers(0, MAX_TIME_MS)
references = st.none() | st.from_regex(r"[\x21-\x7e]{1,256}", fullmatch=True)


def _is_label_text(text: str) -> bool:
    return (
        0 < len(text.encode()) <= MAX_NAME_LABEL_BYTES
        and text.strip(" ") == text
        and unicodedata.is_normalized("NFC", text)
    )


def labels() -> st.SearchStrategy[str]:
    """Valid display names (SPEC §3.4): any script, NFC, no refused character."""
    # Zs (spaces) and the refused categories: words are joined by U+0020 below.
    alphabet = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"))
    words = st.text(alphabet, min_size=1, max_size=12)
    return st.lists(words, min_size=1, max_size=4).map(" ".join).filter(_is_label_text)


def signing_keys() -> st.SearchStrategy[IdentityKey]:
    """One of a few fixed keys."""
    return st.sampled_from(KEYS)


def identities() -> st.SearchStrategy[IdentityId]:
    """Any 32 bytes, or (more often) a fixed key's identity so slots collide."""
    return st.sampled_from([k.identity for k in KEYS]) | st.binary(min_size=32, max_size=32).map(
        IdentityId
    )


def subjects(*, things_allowed: bool) -> st.SearchStrategy[Subject]:
    """An identity, or a thing where the kind allows it."""
    base: st.SearchStrategy[Subject] = identities()
    return base | things if things_allowed else base


def statements(*, name_strategy: st.SearchStrategy[str] = names) -> st.SearchStrategy[Statement]:
    """Any valid statement of any kind."""
    trust = st.builds(
        Trust,
        subject=identities(),
        context=name_strategy,
        value=values,
        name=st.none() | labels(),
    )
    # A profile is about its issuer: `bodies` puts the issuer in the subject.
    profile = st.builds(Profile, subject=identities(), name=labels(), about=st.none() | labels())
    certify = st.builds(
        Certify,
        subject=identities(),
        claim=name_strategy,
        commitment=st.none() | st.binary(min_size=32, max_size=32),
    )
    rate = st.builds(
        Rate,
        subject=subjects(things_allowed=True),
        context=name_strategy,
        value=values,
        reference=references,
    )
    revoke = st.sampled_from([Kind.TRUST, Kind.CERTIFY, Kind.RATE]).flatmap(
        lambda kind: st.builds(
            Revoke,
            target_kind=st.just(kind),
            subject=subjects(things_allowed=kind is Kind.RATE),
            scope=name_strategy,
        )
    )
    unprofile = st.builds(
        Revoke, target_kind=st.just(Kind.PROFILE), subject=identities(), scope=st.just("profile")
    )
    return st.one_of(trust, certify, rate, revoke, profile, unprofile)


@st.composite
def bodies(
    draw: st.DrawFn,
    *,
    statement_strategy: st.SearchStrategy[Statement] | None = None,
    time_strategy: st.SearchStrategy[int] = times,
) -> AttestationBody:
    """A valid body by one of the fixed keys."""
    statement = draw(statement_strategy if statement_strategy is not None else statements())
    issuer = draw(signing_keys()).identity
    if isinstance(statement, Profile) or (
        isinstance(statement, Revoke) and statement.target_kind is Kind.PROFILE
    ):
        statement = dataclasses.replace(statement, subject=issuer)
    issued_at_ms = draw(time_strategy)
    expires_at_ms = None
    if not isinstance(statement, Revoke) and issued_at_ms < MAX_TIME_MS and draw(st.booleans()):
        expires_at_ms = draw(st.integers(issued_at_ms + 1, MAX_TIME_MS))
    return AttestationBody(
        issuer=issuer,
        issued_at_ms=issued_at_ms,
        expires_at_ms=expires_at_ms,
        statement=statement,
    )


def sign(body: AttestationBody) -> Attestation:
    """Sign a body drawn by `bodies` with its issuer's fixed key."""
    return sign_attestation(body, _KEY_BY_ID[body.issuer])


def attestations(
    *,
    statement_strategy: st.SearchStrategy[Statement] | None = None,
    time_strategy: st.SearchStrategy[int] = times,
) -> st.SearchStrategy[Attestation]:
    """Valid, signed attestations."""
    drawn = bodies(statement_strategy=statement_strategy, time_strategy=time_strategy)
    return drawn.map(sign)


def envelopes() -> st.SearchStrategy[bytes]:
    """Canonical envelope bytes."""
    return attestations().map(lambda a: a.data)


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with one edit: a flipped bit, a deletion, an insertion or a truncation."""
    if not data:
        return draw(st.binary(min_size=1, max_size=8))
    index = draw(st.integers(0, len(data) - 1))
    edit = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
    if edit == "flip":
        bit = draw(st.integers(0, 7))
        return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]
    if edit == "delete":
        return data[:index] + data[index + 1 :]
    if edit == "insert":
        return data[:index] + draw(st.binary(min_size=1, max_size=4)) + data[index:]
    return data[:index]
