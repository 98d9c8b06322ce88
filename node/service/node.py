"""`open_node`: one community member's node, as an object any trio program can hold.

The daemon (`trustnode run`), the local HTTP API, `trustnode demo` and apps
that embed trustnode all use this one class, so there is one code path from
"sign this" to "it is on disk and on its way to every peer":

* `trust` / `distrust` / `certify` / `rate` / `revoke` sign with the node's key
  and return once the attestation is **committed** to the store (acknowledged
  = durable), then push it to the connected peers;
* `score` / `explain` / `claim` / `rating` / `ranking` answer from the node's
  own point of view, from a `TrustEngine` that catches up with the store's
  change feed before each answer (so it sees what peers brought meanwhile);
* `changes()` follows everything stored, from any source, in arrival order.

Without `network` the node opens only its data directory (no listener, no
dialling): the CLI uses that to work on a store while the daemon is down.
Store work runs in a worker thread (SQLite blocks); trust computations run in
another, one at a time, so neither stalls the event loop that serves peers.
"""

from __future__ import annotations

import functools
import logging
import random
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import trio

from node.errors import ConfigError, RequestError, StoreCorruptError
from node.gossip.gossip_node import GossipNode, ThreadedStore
from node.gossip.peers import PeerManager, PeerManagerConfig
from node.gossip.relay import RelayGate, RelayPolicy
from node.gossip.signatures import SignatureChecker
from node.home.config import NodeConfig, parse_address
from node.home.datadir import DataDir
from node.home.dirlock import lock_data_dir
from node.names import PETNAMES_FILE, NameBook, PetnameBook, ResolvedName
from node.names.index import NameIndex
from node.net.addresses import (
    detect_host_addresses,
    format_address,
    is_dialable,
    is_local_only,
    own_addresses,
)
from node.service.invites import open_invite_desk
from node.service.prefixes import (
    MAX_CANDIDATES,
    IdentityPrefix,
    choose_by_petname,
    choose_identity,
    parse_identity_or_prefix,
)
from node.service.records import Certificate, NodeStatus, PeerInfo
from node.service.refusals import check_not_self_vouch, nothing_to_revoke
from node.store import Change, IngestReport, Store
from node.store.feed import follow_feed
from node.trust import ClaimDecision, RatingSummary, TrustEngine, TrustExplanation
from protocol.attestation import Attestation, AttestationBody, AttestationId, sign_attestation
from protocol.errors import FieldError
from protocol.identity import IdentityId, IdentityKey, decode_identity_text
from protocol.invite import Invite, sign_invite
from protocol.statement import (
    GENERAL_CONTEXT,
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Slot,
    Statement,
    Subject,
    Thing,
    Trust,
    commit_claim_value,
)

__all__ = ["Node", "open_node"]

T = TypeVar("T")
log = logging.getLogger("trustnode.node")
_DIAL_TIMEOUT_S = 10.0
_STORE_CHECK_S = 20.0  # a quick check reads about 100 MB/s on a slow disk


def system_clock_ms() -> int:
    """Wall-clock time in unix milliseconds."""
    return time.time_ns() // 1_000_000


async def dial_tcp(address: str) -> trio.abc.Stream:
    """Open a TCP connection to `host:port` (addresses may come from peers: all
    failures, a malformed address included, are `OSError`)."""
    try:
        host, port = parse_address(address)
    except ConfigError as exc:
        raise OSError(str(exc)) from None
    with trio.move_on_after(_DIAL_TIMEOUT_S):
        try:
            return await trio.open_tcp_stream(host, port)
        except (UnicodeError, ValueError) as exc:  # e.g. a host name IDNA refuses
            raise OSError(f"cannot dial {address!r:.80}: {exc}") from None
    raise OSError(f"connecting to {address} timed out")


class Node:
    """A running node; make it with `open_node`."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        key: IdentityKey,
        store: Store,
        reader: Store,
        wall_clock_ms: Callable[[], int],
        petnames: PetnameBook | None = None,
    ) -> None:
        self.config = config
        self._petnames = petnames or PetnameBook(None)
        self._names = NameIndex()
        self._names_lock = trio.Lock()
        self._key = key
        # A damaged store stops the node (`failure`), through either connection.
        self.failure: StoreCorruptError | None = None
        self._stop: trio.CancelScope | None = None
        self._store = _WatchedStore(store, self._corrupted)
        # Queries read through a second connection: in WAL mode readers never wait
        # for the writer, so the API keeps answering while a peer's big batch
        # (signature checks, commit) holds the write connection.
        self._reader = _WatchedStore(reader, self._corrupted)
        self._clock = wall_clock_ms
        anchors = [key.identity, *(decode_identity_text(a) for a in config.relay_anchors)]
        self._anchors = tuple(anchors)  # also names `resolve_identity` may complete
        self._gate = RelayGate(
            anchors=anchors,
            policy=RelayPolicy(unvouched_quota=config.unvouched_quota),
            wall_clock_ms=wall_clock_ms,
        )
        self.signature_checker = SignatureChecker()  # its process starts on first use
        self.gossip = GossipNode(
            store=self._store,
            wall_clock_ms=wall_clock_ms,
            max_skew_ms=config.max_skew_s * 1000,
            admit=self._gate,
            resync_interval_s=config.resync_interval_s,
            identity=key.identity,  # the root of our attestations' source tree (SPEC §9.4)
            # A join checks signatures in a worker process, stores on another core.
            verify_ahead=True,
            signature_checker=self.signature_checker,
        )
        # Single-use invites, enforced (node.service.invites); `open_node` opens the files.
        self.invites = open_invite_desk(
            None, gossip=self.gossip, gate=self._gate, wall_clock_ms=wall_clock_ms
        )
        self.peer_manager: PeerManager | None = None
        self.advertised: tuple[str, ...] = ()  # own addresses given to the peer manager
        self.listen_address: str | None = None
        self._bound: tuple[str, int] | None = None  # (host, port) the listener has
        self._engine = TrustEngine(key.identity, now_ms=wall_clock_ms())
        self._engine_lock = trio.Lock()
        self._cursor = 0
        self._started = trio.current_time()

    def _corrupted(self, error: StoreCorruptError) -> None:
        """The store is damaged: stop the node (`open_node` raises `error`). Each sync
        session would otherwise meet the same bad page again, many times a second."""
        if self.failure is None:
            self.failure = error  # reported once, by whoever opened the node
        if self._stop is not None:
            self._stop.cancel()

    # -- who we are ---------------------------------------------------------------------

    @property
    def identity(self) -> IdentityId:
        """This node's identity (the issuer of everything it signs)."""
        return self._key.identity

    # -- saying things ------------------------------------------------------------------

    async def trust(
        self, subject: IdentityId, value: int = 50, *, context: str = GENERAL_CONTEXT,
        expires_in_s: int | None = None, name: str | None = None,
    ) -> Attestation:  # fmt: skip
        """Vouch for `subject` in `context` with strength `value` (1..100); `name` is
        what we know them by, for our contacts (a label, SPEC §3.4)."""
        if not 1 <= value <= 100:
            raise RequestError("bad_value", "a vouch's value is 1..100 (distrust for negative)")
        try:
            statement = Trust(subject=subject, context=context, value=value, name=name)
        except FieldError as exc:
            raise RequestError("bad_value", f"the name: {exc}") from None
        return await self.issue(statement, expires_in_s=expires_in_s)

    async def distrust(
        self, subject: IdentityId, value: int = 100, *, context: str = GENERAL_CONTEXT,
        expires_in_s: int | None = None,
    ) -> Attestation:  # fmt: skip
        """Flag `subject` in `context` with strength `value` (1..100)."""
        if not 1 <= value <= 100:
            raise RequestError("bad_value", "a flag's strength is 1..100")
        return await self.issue(
            Trust(subject=subject, context=context, value=-value), expires_in_s=expires_in_s
        )

    async def certify(
        self, subject: IdentityId, claim: str, *, private_value: str | None = None,
        expires_in_s: int | None = None,
    ) -> Certificate:  # fmt: skip
        """Certify `claim` about `subject`; with `private_value`, only a salted
        commitment to it travels (the salt comes back in the certificate)."""
        salt = None
        commitment = None
        if private_value is not None:
            salt = secrets.token_bytes(32)
            commitment = commit_claim_value(
                subject=subject, claim=claim, value=private_value.encode(), salt=salt
            )
        statement = Certify(subject=subject, claim=claim, commitment=commitment)
        return Certificate(
            attestation=await self.issue(statement, expires_in_s=expires_in_s), salt=salt
        )

    async def rate(
        self, subject: Subject, value: int, *, context: str = GENERAL_CONTEXT,
        reference: str | None = None, expires_in_s: int | None = None,
    ) -> Attestation:  # fmt: skip
        """Rate an exchange with `subject` (an identity or a thing's URI), -100..100."""
        statement = Rate(subject=subject, context=context, value=value, reference=reference)
        return await self.issue(statement, expires_in_s=expires_in_s)

    async def revoke(self, kind: Kind, subject: Subject, scope: str) -> Attestation:
        """Withdraw our `kind` statement about `subject` in `scope` (context or claim).

        Raises:
            RequestError: `not_found` when that slot holds nothing current (a
                mistyped scope must not look done), naming the slots we hold
                about `subject`.
        """
        statement = Revoke(target_kind=kind, subject=subject, scope=scope)
        slot = Slot(issuer=self.identity, kind=kind, subject=subject, scope=scope)
        now = self._clock()
        current = await self._store.run(lambda s: s.current_in_slot(slot.id, now_ms=now))
        if current is None:
            held = await self._store.run(lambda s: s.current_by_issuer(self.identity, now_ms=now))
            raise nothing_to_revoke(kind, subject, scope, held=held)
        return await self.issue(statement)

    async def issue(self, statement: Statement, *, expires_in_s: int | None = None) -> Attestation:
        """Sign `statement`, commit it, then push it to the peers.

        The time is now, or just after the slot's current head if that is not
        older (two updates within one millisecond must still supersede in order).

        Raises:
            RequestError: `bad_value` for a vouch or flag of ourselves (see
                `node.service.refusals`); `refused` if the store refuses it.
        """
        check_not_self_vouch(statement, issuer=self.identity)
        now = self._clock()
        probe = AttestationBody(issuer=self.identity, issued_at_ms=now, statement=statement)
        head = await self._store.run(lambda s: s.slot_head(probe.slot.id))
        issued = now if head is None else max(now, head.issued_at_ms + 1)
        if issued > now + 1:
            log.warning(
                "the clock is behind this slot's last statement: dated %d ms ahead", issued - now
            )
        expires = None if expires_in_s is None else issued + expires_in_s * 1000
        body = AttestationBody(
            issuer=self.identity, issued_at_ms=issued, expires_at_ms=expires, statement=statement
        )
        attestation = sign_attestation(body, self._key)
        report = await self.gossip.publish([attestation], now_ms=max(now, issued))
        item = report.items[0]
        if item.reason is not None:
            raise RequestError("refused", f"the store refused it: {item.reason.value}")
        if isinstance(statement, Trust | Revoke):
            self._gate.invalidate()  # our vouches decide what we relay
        log.info("issued %s %s", attestation.kind.name.lower(), attestation.id.hex()[:16])
        return attestation

    async def import_envelopes(self, envelopes: Sequence[bytes]) -> IngestReport:
        """Verify and store envelopes (an export file, another app); new ones are pushed."""
        return await self.gossip.ingest_local(envelopes)

    async def export(self) -> list[bytes]:
        """Every stored envelope, in (issued_at, id) order: a portable copy of our set."""

        def everything(store: Store) -> list[bytes]:
            envelopes: list[bytes] = []
            after: tuple[int, bytes] | None = None
            try:
                while batch := store.ids_in_order(after=after, limit=5000):
                    found = (store.get(i) for _, i in batch)
                    envelopes += [a.data for a in found if a is not None]
                    after = (batch[-1][0], bytes(batch[-1][1]))
            except StoreCorruptError:
                # Export is how a member saves a damaged store (README): what can
                # still be read, row by row; the importer verifies every envelope.
                log.warning("the store is damaged: exporting what can still be read")
                return store.salvage_envelopes()
            return envelopes

        return await self._reader.run(everything)

    def own_addresses(self, advertise: Sequence[str] = ()) -> tuple[str, ...]:
        """Where a neighbour can dial this node: `advertise` (for one invite), else
        `[network] advertise`, else the listen address (the interfaces' addresses
        when it is a wildcard), as `node.net.addresses.own_addresses` decides."""
        return own_addresses(
            listen=self.config.listen,
            bound=self._bound,
            advertise=tuple(advertise) or self.config.advertise,
            detect=detect_host_addresses,
        )

    def invite(
        self, *, expires_in_s: int | None = 7 * 86_400, single_use: bool = False,
        advertise: Sequence[str] = (),
    ) -> str:  # fmt: skip
        """A signed invite code to this community that bootstraps from this node.

        It carries every address of `own_addresses(advertise)` (at most 8), so a
        joiner on another network can try each; `node.net.addresses.invite_warnings`
        says when they all are loopback ones.

        Raises:
            ConfigError: the node has no address to invite to (listen port 0, not running).
            RequestError: `bad_value`, an address in `advertise` is not host:port.
        """
        if any(not is_dialable(a, local=True) for a in advertise):
            raise RequestError("bad_value", "advertise host:port addresses, not 0.0.0.0 or port 0")
        addresses = self.own_addresses(advertise)
        if not addresses:
            raise ConfigError("this node has no address to invite to (set [network] advertise)")
        expires = None if expires_in_s is None else self._clock() + expires_in_s * 1000
        try:
            made = Invite(
                community_id=self.config.community_id,
                community_key=self.config.community_key,
                bootstrap=addresses,
                inviter=self.identity,
                expires_at_ms=expires,
                nonce=secrets.token_bytes(16) if single_use else None,
            )
        except FieldError as exc:
            raise RequestError("bad_value", f"invite addresses: {exc}") from None
        code = sign_invite(made, self._key)
        self.invites.issue(made)  # on disk before the code is handed out
        return code

    # -- names (node.names) -------------------------------------------------------------

    def petnames(self) -> dict[IdentityId, str]:
        """My petnames: names only this node knows, never sent."""
        return self._petnames.as_dict()

    async def set_petname(self, subject: IdentityId, name: str) -> None:
        """Name `subject` `name` here (durably); unique per node.

        Raises:
            RequestError: `bad_value` (not a label), `conflict` (taken, or read alike).
        """
        await trio.to_thread.run_sync(self._petnames.set, subject, name)

    async def remove_petname(self, subject: IdentityId) -> str:
        """Forget our petname for `subject`; returns it.

        Raises:
            RequestError: `not_found` when `subject` has none.
        """
        removed = await trio.to_thread.run_sync(self._petnames.remove, subject)
        if removed is None:
            raise RequestError("not_found", "you gave no petname to that identity")
        return removed

    async def set_profile(self, name: str, *, about: str | None = None) -> Attestation:
        """Publish our self-chosen name (and a short line about us): a signed `profile`.

        Raises:
            RequestError: `bad_value` when `name` or `about` is not a label (SPEC §3.4).
        """
        try:
            statement = Profile(subject=self.identity, name=name, about=about)
        except FieldError as exc:
            raise RequestError("bad_value", str(exc).removeprefix("out_of_range: ")) from None
        return await self.issue(statement)

    async def name_book(self) -> NameBook:
        """Everything naming needs, caught up with the store, from our point of view."""
        async with self._names_lock:
            await self._reader.run(self._names.follow)
        now = self._clock()
        petnames = self._petnames.as_dict()
        named = sorted(self._names.named(now_ms=now) | set(petnames))
        scores = await self._ask(lambda e: {i: e.score(i) for i in named})
        return self._names.book(viewer=self.identity, petnames=petnames, trust=scores, now_ms=now)

    async def names(self, identities: Sequence[IdentityId]) -> dict[IdentityId, ResolvedName]:
        """How we name each of `identities` (node.names.resolver)."""
        book = await self.name_book()
        return {i: book.resolve(i) for i in identities}

    async def find(self, text: str, *, limit: int = 20) -> list[tuple[ResolvedName, float]]:
        """Members any of whose names reads like `text`, most trusted first, with scores."""
        book = await self.name_book()
        found = book.find(text)[:limit]
        return [(book.resolve(i), book.trust.get(i, 0.0)) for i in found]

    # -- reading the store --------------------------------------------------------------

    async def resolve_identity(self, text: str) -> IdentityId:
        """The identity `text` names: a full `tn_…` text, a unique prefix of one the
        store knows (`tn_` and at least 6 characters; see `node.service.prefixes`), of
        a connected peer, of a relay anchor (the inviter) or our own (right after
        `join` the store knows no one, and the new member's first vouch is typed
        from what `peers` shows), or one of our petnames (exact, or the start of one
        read alike).

        Raises:
            RequestError: `bad_identity` or `ambiguous_identity` (naming the candidates).
        """
        if not text.startswith("tn_"):
            return choose_by_petname(text, self._petnames.as_dict())
        parsed = parse_identity_or_prefix(text)
        if not isinstance(parsed, IdentityPrefix):
            return parsed
        stored = await self._reader.run(
            lambda s: s.identities_between(parsed.low, parsed.high, limit=MAX_CANDIDATES + 1)
        )
        met = [*self._anchors, *(p.identity for p in self.peers())]
        in_range = [i for i in met if parsed.low <= i and (parsed.high is None or i < parsed.high)]
        return choose_identity(parsed, sorted({*stored, *in_range}))

    async def resolve_subject(self, text: str) -> Subject:
        """An identity (full, a unique prefix or a petname, as `resolve_identity`) or a
        thing's URI."""
        if text.startswith("tn_"):
            return await self.resolve_identity(text)
        petname = next((i for i, n in self._petnames.as_dict().items() if n == text), None)
        return Thing(text) if petname is None else petname

    async def attestations(
        self, *, issuer: IdentityId | None = None, subject: Subject | None = None
    ) -> list[Attestation]:
        """Current attestations by `issuer` or about `subject` (exactly one of them)."""
        now = self._clock()
        if (issuer is None) == (subject is None):
            raise RequestError("bad_value", "give exactly one of issuer and subject")
        if issuer is not None:
            return await self._reader.run(lambda s: s.current_by_issuer(issuer, now_ms=now))
        assert subject is not None
        return await self._reader.run(lambda s: s.current_about(subject, now_ms=now))

    async def holds(self, attestation_id: bytes) -> bool:
        """Whether this node's store holds the attestation with this id."""
        wanted = AttestationId(attestation_id)
        return await self._reader.run(lambda s: s.contains(wanted))

    async def changes(self, *, cursor: int = 0) -> AsyncGenerator[Change, None]:
        """Everything stored after `cursor`, then each new arrival, forever.

        Use it with `contextlib.aclosing`, or in a task you cancel.
        """
        while True:
            signal = self.gossip.stored_signal
            batch = await self._reader.run(functools.partial(_changes_after, cursor))
            for change in batch:
                yield change
            if batch:
                cursor = batch[-1].seq
            else:
                await signal.wait()

    # -- trust --------------------------------------------------------------------------

    async def _ask(self, question: Callable[[TrustEngine], T]) -> T:
        """Catch the engine up with the store, then answer in a worker thread."""
        async with self._engine_lock:
            engine = self._engine
            self._cursor = await self._reader.run(
                lambda s: follow_feed(engine, s, cursor=self._cursor)
            )
            now = self._clock()

            def answer() -> T:
                engine.advance(max(now, engine.now_ms))
                return question(engine)

            return await trio.to_thread.run_sync(answer)

    async def score(self, subject: IdentityId, context: str = GENERAL_CONTEXT) -> float:
        """How far this node should trust `subject` in `context`, in [0, 1]."""
        return await self._ask(lambda e: e.score(subject, context))

    async def scores(self, context: str = GENERAL_CONTEXT) -> dict[IdentityId, float]:
        """Every member's score in `context`, in one batched solve (`TrustEngine.scores`)."""
        return await self._ask(lambda e: e.scores(context))

    async def explain(
        self, subject: IdentityId, context: str = GENERAL_CONTEXT, *, top_paths: int = 5
    ) -> TrustExplanation:
        """The score with everything behind it: first hops, strongest routes, flags, walls."""
        return await self._ask(lambda e: e.explain(subject, context, top_paths=top_paths))

    async def ranking(
        self, context: str = GENERAL_CONTEXT, *, limit: int = 20
    ) -> list[tuple[IdentityId, float]]:
        """The members this node trusts most in `context`, strongest first."""
        return await self._ask(lambda e: e.ranking(context, limit=limit))

    async def claim(
        self, subject: IdentityId, claim: str, *, independent: int = 2
    ) -> ClaimDecision:
        """Whether enough independent trusted certifiers back `claim` about `subject`."""
        return await self._ask(lambda e: e.claim(subject, claim, independent=independent))

    async def rating(
        self, subject: Subject, context: str = GENERAL_CONTEXT
    ) -> tuple[RatingSummary, list[IdentityId]]:
        """Trust-weighted rating of `subject`, with the raters counted (heaviest first)."""

        def rate(engine: TrustEngine) -> tuple[RatingSummary, list[IdentityId]]:
            summary = engine.rating(subject, context)
            identities = engine.walk(context).identities
            return summary, [identities[node] for node, _, _ in summary.counted]

        return await self._ask(rate)

    async def ratings(self, subject: Subject) -> list[tuple[str, RatingSummary, list[IdentityId]]]:
        """`rating` in every context `subject` was rated in: (context, summary, raters).

        A thing rated in `lending` has no rating in `general`; asking for every
        context is how a member finds it without guessing the context first.
        """

        def rate_all(engine: TrustEngine) -> list[tuple[str, RatingSummary, list[IdentityId]]]:
            answers = []
            for context in engine.rating_contexts(subject):
                summary = engine.rating(subject, context)
                identities = engine.walk(context).identities
                answers.append((context, summary, [identities[n] for n, _, _ in summary.counted]))
            return answers

        return await self._ask(rate_all)

    # -- peers and health ---------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """The connected peers."""
        now = trio.current_time()
        infos = []
        for identity, dialled, eager in self.gossip.describe_peers():
            synced = self.gossip.last_sync_at.get(identity)
            infos.append(
                PeerInfo(
                    identity=identity,
                    dialled=dialled,
                    eager=eager,
                    last_sync_age_s=None if synced is None else now - synced,
                )
            )
        return sorted(infos, key=lambda p: p.identity)

    def connect(self, address: str) -> None:
        """Keep a connection to `address` (host:port) from now on."""
        if self.peer_manager is None:
            raise ConfigError("this node runs without networking")
        parse_address(address, what="peer address")
        self.peer_manager.add_address(address)

    async def status(self) -> NodeStatus:
        """Counts and ages for `trustnode status`, the API and the metrics."""
        statistics = await self._reader.run(lambda s: s.statistics())
        now = trio.current_time()
        synced = max(self.gossip.last_sync_at.values(), default=None)
        manager = self.peer_manager
        return NodeStatus(
            identity=self.identity,
            community_id=self.config.community_id,
            listen=self.listen_address,
            # What the running peer manager shares; offline, what it would share.
            advertised=self.advertised if manager else self.own_addresses(),
            peers=len(self.gossip.peers),
            active_addresses=tuple(manager.active) if manager else (),
            passive_addresses=len(manager.passive) if manager else 0,
            attestations=statistics.attestations,
            heads=statistics.heads,
            store_bytes=statistics.file_bytes,
            stored_from_peers=self.gossip.stored_from_peers,
            payload_bytes_received=self.gossip.payload_bytes_received,
            protocol_errors=self.gossip.protocol_errors,
            store_errors=self.gossip.store_errors,
            relay_refused=self._gate.refused,
            dial_failures=manager.dial_failures if manager else 0,
            last_sync_age_s=None if synced is None else now - synced,
            uptime_s=now - self._started,
        )

    async def wait_for(self, count: int, *, poll_s: float = 0.05) -> None:
        """Wait until the store holds at least `count` attestations (tests, demos)."""
        while True:
            signal = self.gossip.stored_signal
            statistics = await self._reader.run(lambda s: s.statistics())
            if statistics.attestations >= count:
                return
            with trio.move_on_after(poll_s):
                await signal.wait()

    # -- running ------------------------------------------------------------------------

    async def _start_network(self, nursery: trio.Nursery, rng: random.Random) -> None:
        host, port = parse_address(self.config.listen, what="[network] listen")
        try:
            listeners = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.config.listen}: {exc.strerror}") from None
        bound_host, bound_port = listeners[0].socket.getsockname()[:2]
        self._bound = (bound_host, bound_port)
        self.listen_address = format_address(bound_host, bound_port)
        for extra in listeners[1:]:
            await extra.aclose()
        advertise = self.advertised = self.own_addresses()
        self.peer_manager = PeerManager(
            gossip=self.gossip,
            identity_key=self._key,
            community=self.config.community,
            dial=dial_tcp,
            rng=rng,
            config=PeerManagerConfig(max_active=self.config.max_active, advertise=advertise),
        )
        for address in self.config.bootstrap:
            self.peer_manager.add_address(address)
        nursery.start_soon(self.peer_manager.run, listeners[0])
        log.info(
            "listening on %s for community %s; peers dial %s%s",
            self.listen_address,
            self.config.community_id.hex()[:16],
            ", ".join(advertise) or "nothing (no address)",
            " (this machine only)" if is_local_only(advertise) else "",
        )


def _changes_after(cursor: int, store: Store) -> list[Change]:
    return store.changes_since(cursor, limit=500)


@contextmanager
def _opened_store(data: DataDir) -> Iterator[tuple[Store, Store]]:
    """The store's write connection and a second one for queries."""
    store = data.open_store()
    try:
        reader = data.open_store()
        try:
            yield store, reader
        finally:
            reader.close()
    finally:
        store.close()


@asynccontextmanager
async def open_node(
    config: NodeConfig,
    *,
    network: bool = True,
    passphrase: bytes | None = None,
    wall_clock_ms: Callable[[], int] = system_clock_ms,
    rng: random.Random | None = None,
    create_key: bool = True,
) -> AsyncIterator[Node]:
    """Open the community's data directory and run its node until the block ends.

    The key is created on first use of a fresh directory (sealed with
    `passphrase` if given), unless `create_key` is false (the CLI's way: only
    `trustnode init` makes an identity); a directory whose store survives its
    key is always refused. With
    `network`, the node listens on `config.listen` and keeps connections to
    `config.bootstrap` and the peers it learns of. Leaving the block stops
    every task and closes the store; everything acknowledged is on disk. An
    exception from the block comes out as itself, not inside an ExceptionGroup.
    The node holds the data directory's lock (`node.home.dirlock`) while it is open:
    one node per directory, in any process.

    Raises:
        DataDirLockedError: another process (or node) has the directory open.
        StoreError: the data directory, key file or store cannot be used safely.
        ConfigError: the node cannot listen where it is configured to.
    """
    data = DataDir.open(config.data_dir)
    if create_key:
        key = data.load_or_create_key(passphrase=passphrase)
    else:
        key = data.load_key(passphrase=passphrase)
    with lock_data_dir(data.path), _opened_store(data) as (store, reader):
        if network:  # the daemon: refuse a damaged store before saying `ready`
            await trio.to_thread.run_sync(_check_store, store)
        petnames = PetnameBook.load(data.path / PETNAMES_FILE)
        node = Node(
            config, key=key, store=store, reader=reader, wall_clock_ms=wall_clock_ms,
            petnames=petnames,
        )  # fmt: skip
        node.invites = open_invite_desk(
            data.path, gossip=node.gossip, gate=node._gate, wall_clock_ms=wall_clock_ms
        )
        try:
            async with trio.open_nursery() as nursery:
                node._stop = nursery.cancel_scope
                if network:
                    await node._start_network(nursery, rng or random.Random())  # noqa: S311
                try:
                    yield node
                finally:
                    node.gossip.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise node.failure or _sole(group) from None
        finally:
            node.signature_checker.close()
        if node.failure is not None:
            raise node.failure


def _check_store(store: Store) -> None:
    """SQLite's quick check, bounded: a large store on a slow disk still starts."""
    started = time.monotonic()
    if not store.quick_check(timeout_s=_STORE_CHECK_S):
        log.warning("store check stopped after %.0f s: starting without it", _STORE_CHECK_S)
    log.debug("store checked in %.2f s", time.monotonic() - started)


class _WatchedStore(ThreadedStore[Store]):
    """A `ThreadedStore` that tells its node when the store turns out damaged."""

    def __init__(self, store: Store, corrupted: Callable[[StoreCorruptError], None]) -> None:
        super().__init__(store)
        self._corrupted = corrupted

    async def run(self, operation: Callable[[Store], T]) -> T:
        """Run `operation(store)` in a thread; a `StoreCorruptError` also stops the node."""
        try:
            return await super().run(operation)
        except StoreCorruptError as exc:
            self._corrupted(exc)
            raise


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside (nested) single-member groups, else the group itself.

    The node's tasks run in a nursery around the caller's block, so trio wraps
    whatever the block raises in an ExceptionGroup; the caller should get back
    the very exception it raised (or the one that stopped the node).
    """
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return inner
