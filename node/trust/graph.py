"""From attestations to one context's signed trust graph (DESIGN §6).

The trust engine never reads the store: it takes verified attestations (or a
plain edge list, for simulations and apps) and builds compact arrays. Only the
*current* attestation of each slot counts (SPEC §5): a superseded, revoked or
expired vouch is not an edge.

Context fallback rule. A vouch is given in a context ("carpool", "plumbing")
or in `general`. For a context c other than `general`, the edge issuer→subject is

* the issuer's own current trust in c about the subject, if there is one
  (whatever its sign), otherwise
* the issuer's `general` trust about the subject: a vouch at half weight
  (`GENERAL_FALLBACK`: "I trust Ann in general" says less about her driving
  than "I trust Ann to drive"), a distrust at full weight (a warning is never
  weakened by a change of context).

Positive edges (value/100 in (0, 1]) carry random walks; negative edges never
do. They are kept apart as *distrust*: the viewer's own become walls, everyone
else's are flags (see `node.trust.walk`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.attestation import Attestation
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, Certify, Rate, SlotId, Subject, Trust
from protocol.supersession import is_current, order_key

__all__ = [
    "GENERAL_FALLBACK",
    "Certification",
    "Edge",
    "Evidence",
    "Rating",
    "TrustGraph",
    "context_weights",
    "current_attestations",
    "evidence_from_attestations",
]

GENERAL_FALLBACK = 0.5
"""Weight factor of a `general` vouch used in another context."""

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """A current trust statement: `issuer` trusts `subject` in `context` at `value`."""

    issuer: IdentityId
    subject: IdentityId
    value: int
    context: str = GENERAL_CONTEXT


@dataclass(frozen=True, slots=True, kw_only=True)
class Certification:
    """A current certification: `issuer` checked `claim` about `subject`."""

    issuer: IdentityId
    subject: IdentityId
    claim: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rating:
    """A current rating of an identity or a thing by `issuer` in `context`."""

    issuer: IdentityId
    subject: Subject
    value: int
    context: str = GENERAL_CONTEXT


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Everything the trust engine reasons on, from current attestations only."""

    edges: tuple[Edge, ...] = ()
    certifications: tuple[Certification, ...] = ()
    ratings: tuple[Rating, ...] = ()


def current_attestations(attestations: Iterable[Attestation], *, now_ms: int) -> list[Attestation]:
    """The attestations that count at `now_ms`: each slot's head, if it is current.

    Depends only on the set given, never on its order (SPEC §5): the result is
    sorted by attestation id.
    """
    heads: dict[SlotId, Attestation] = {}
    for attestation in attestations:
        slot_id = attestation.slot.id
        head = heads.get(slot_id)
        if head is None or order_key(attestation) > order_key(head):
            heads[slot_id] = attestation
    current = [a for a in heads.values() if is_current(a, now_ms=now_ms)]
    current.sort(key=lambda a: a.id)
    return current


def evidence_from_attestations(attestations: Iterable[Attestation], *, now_ms: int) -> Evidence:
    """Sort the current attestations into edges, certifications and ratings."""
    edges: list[Edge] = []
    certifications: list[Certification] = []
    ratings: list[Rating] = []
    for attestation in current_attestations(attestations, now_ms=now_ms):
        statement = attestation.statement
        if isinstance(statement, Trust):
            edges.append(
                Edge(
                    issuer=attestation.issuer,
                    subject=statement.subject,
                    value=statement.value,
                    context=statement.context,
                )
            )
        elif isinstance(statement, Certify):
            certifications.append(
                Certification(
                    issuer=attestation.issuer, subject=statement.subject, claim=statement.claim
                )
            )
        elif isinstance(statement, Rate):
            ratings.append(
                Rating(
                    issuer=attestation.issuer,
                    subject=statement.subject,
                    value=statement.value,
                    context=statement.context,
                )
            )
    return Evidence(
        edges=tuple(edges), certifications=tuple(certifications), ratings=tuple(ratings)
    )


def context_weights(
    edges: Iterable[Edge], *, context: str = GENERAL_CONTEXT, fallback: float = GENERAL_FALLBACK
) -> dict[tuple[IdentityId, IdentityId], float]:
    """Signed weights in [-1, 1] of `context`, after the fallback rule of the module doc.

    Self-vouches and zero values carry nothing and are dropped.

    Raises:
        LocalProtocolError: two edges share issuer, subject and context (a
            caller passed something that is not a set of current statements).
    """
    specific: dict[tuple[IdentityId, IdentityId], float] = {}
    general: dict[tuple[IdentityId, IdentityId], float] = {}
    for edge in edges:
        if edge.context != context and edge.context != GENERAL_CONTEXT:
            continue
        target = specific if edge.context == context else general
        key = (edge.issuer, edge.subject)
        if key in target:
            raise LocalProtocolError("two current edges for one issuer, subject and context")
        target[key] = edge.value / 100.0
    if context != GENERAL_CONTEXT:
        for key, weight in general.items():
            if key not in specific:
                specific[key] = weight * fallback if weight > 0 else weight
    return {key: w for key, w in specific.items() if w != 0.0 and key[0] != key[1]}


@dataclass(frozen=True, slots=True, eq=False)
class TrustGraph:
    """One context's graph in arrays: positive edges as CSR rows, distrust apart.

    Identities are numbered in byte order, so the same set of edges always
    gives the same arrays (and the same floating-point scores) whatever order
    the attestations arrived in.
    """

    identities: tuple[IdentityId, ...]
    index: Mapping[IdentityId, int]
    indptr: IndexArray
    indices: IndexArray
    weights: FloatArray
    distrust: Mapping[tuple[int, int], float]  # (issuer, subject) -> strength in (0, 1]

    @classmethod
    def from_weights(
        cls,
        weights: Mapping[tuple[IdentityId, IdentityId], float],
        *,
        identities: Iterable[IdentityId] = (),
    ) -> TrustGraph:
        """Build from signed weights (as `context_weights` returns them).

        `identities` adds members that have no edge yet (the viewer, say).
        """
        members = set(identities)
        for issuer, subject in weights:
            members.add(issuer)
            members.add(subject)
        ordered = tuple(sorted(members))
        index = {identity: i for i, identity in enumerate(ordered)}
        positive = [(index[i], index[s], w) for (i, s), w in weights.items() if w > 0.0]
        distrust = {(index[i], index[s]): -w for (i, s), w in weights.items() if w < 0.0}
        return cls.from_arrays(
            ordered,
            issuers=np.fromiter((p[0] for p in positive), dtype=np.int64, count=len(positive)),
            subjects=np.fromiter((p[1] for p in positive), dtype=np.int64, count=len(positive)),
            weights=np.fromiter((p[2] for p in positive), dtype=np.float64, count=len(positive)),
            distrust=distrust,
        )

    @classmethod
    def from_arrays(
        cls,
        identities: tuple[IdentityId, ...],
        *,
        issuers: IndexArray,
        subjects: IndexArray,
        weights: FloatArray,
        distrust: Mapping[tuple[int, int], float] | None = None,
    ) -> TrustGraph:
        """Build from positive edges given as index arrays (simulations, benchmarks).

        Raises:
            LocalProtocolError: identities are not in byte order, an index is out of
                range, a weight is outside (0, 1], or an edge is a loop or repeated.
        """
        n = len(identities)
        if any(a >= b for a, b in itertools.pairwise(identities)):
            raise LocalProtocolError("identities must be unique and in byte order")
        if not issuers.shape == subjects.shape == weights.shape:
            raise LocalProtocolError("edge arrays differ in length")
        if issuers.size and (
            min(int(issuers.min()), int(subjects.min())) < 0
            or max(int(issuers.max()), int(subjects.max())) >= n
        ):
            raise LocalProtocolError("edge index out of range")
        if weights.size and not (float(weights.min()) > 0.0 and float(weights.max()) <= 1.0):
            raise LocalProtocolError("positive weights must lie in (0, 1]")
        if bool(np.any(issuers == subjects)):
            raise LocalProtocolError("a vouch for oneself is not an edge")
        order = np.lexsort((subjects, issuers))
        rows, cols = issuers[order], subjects[order]
        if rows.size > 1 and bool(np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))):
            raise LocalProtocolError("repeated edge")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return cls(
            identities=identities,
            index={identity: i for i, identity in enumerate(identities)},
            indptr=indptr,
            indices=np.ascontiguousarray(cols, dtype=np.int64),
            weights=np.ascontiguousarray(weights[order], dtype=np.float64),
            distrust=dict(distrust or {}),
        )

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[Edge],
        *,
        context: str = GENERAL_CONTEXT,
        identities: Iterable[IdentityId] = (),
        fallback: float = GENERAL_FALLBACK,
    ) -> TrustGraph:
        """Build `context`'s graph from current trust statements."""
        weights = context_weights(edges, context=context, fallback=fallback)
        return cls.from_weights(weights, identities=identities)

    @property
    def size(self) -> int:
        """Number of identities."""
        return len(self.identities)

    @property
    def arc_count(self) -> int:
        """Number of positive edges."""
        return int(self.weights.size)

    def out_edges(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Subjects and weights of `node`'s positive edges."""
        start, end = int(self.indptr[node]), int(self.indptr[node + 1])
        return self.indices[start:end], self.weights[start:end]
