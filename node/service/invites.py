"""Single-use invites, enforced by the inviter's node (SPEC §12).

Two small files in the data directory, each written atomically (a temporary
file, fsync, rename, fsync of the folder) before the step it records is
acknowledged, so a kill -9 never forgets an invite it handed out or a
redemption it accepted:

* `invites.json`, the inviter's book (`node.service.invite_book`): each
  single-use invite this node made (nonce, expiry) and, once redeemed, the
  identity it is bound to, until 30 days after it was redeemed or expired;
* `invite.json`, the joiner's ticket: the invite `trustnode join` used
  (inviter, nonce) and, if the inviter refused it, why.

The inviter's side of a refusal is counted in memory (`node.service.invite_refusals`)
so that `trustnode status` can tell the inviter why a neighbour could not join.

What a redeemed invite grants is deliberately small: the inviter's node stores
(and so relays) the joiner's attestations without the unvouched quota, as if
it vouched for them (`RelayGate.admit`). It is not a vouch: other nodes see
nothing of it and keep their own quota until someone vouches. The community
key itself is not single-use: whoever holds a closed community's code can
still complete handshakes (SPEC §12's threat model).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from node.errors import RequestError, StoreError
from node.gossip.extensions import Send
from node.gossip.gossip_node import GossipNode
from node.gossip.relay import RelayGate
from node.net.addresses import is_dialable
from node.service.invite_book import INVITES_FILE, InviteBook, read_document, write_atomically
from node.service.invite_refusals import UNKNOWN, RedeemRefusals
from protocol.errors import DecodeError, Reason, VerificationError
from protocol.identity import (
    IdentityId,
    decode_identity_text,
    encode_identity_text,
    short_identity_text,
)
from protocol.invite import Invite, IssuedInvite, check_invite, decode_invite, redeem
from protocol.wire import ErrorMessage, Hello, Message, Redeem

__all__ = [
    "INVITES_CAPABILITY",
    "INVITES_FILE",
    "TICKET_FILE",
    "InviteBook",
    "InviteDesk",
    "InviteTicket",
    "open_invite_desk",
    "refusal_words",
]

log = logging.getLogger("trustnode.invites")

# Named in hello by a node that records the invites it makes and answers `redeem`.
INVITES_CAPABILITY = "invites"
TICKET_FILE = "invite.json"
_TICKET_FORMAT = "trustnode-invite-ticket"
_REFUSALS = {Reason.INVITE_USED.value, Reason.INVITE_EXPIRED.value}
# The root keys that succeeded a key in its member's chain, as the store knows them (§17).
ChainOf = Callable[[IdentityId], Awaitable[frozenset[IdentityId]]]


def refusal_words(code: str) -> str:
    """What an inviter's refusal means, for the person whose node it refused."""
    if code == Reason.INVITE_USED.value:
        return "this single-use invite was already used by another identity; ask for a new one"
    return "this invite expired before your node reached the inviter; ask for a new one"


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteTicket:
    """The single-use invite a joiner came in with; `refused` is the inviter's code."""

    inviter: IdentityId
    nonce: bytes
    refused: str | None = None

    @classmethod
    def of(cls, invite: Invite) -> InviteTicket | None:
        """The ticket to keep for `invite` (None: not single-use, nothing to present)."""
        return None if invite.nonce is None else cls(inviter=invite.inviter, nonce=invite.nonce)

    @classmethod
    def load(cls, path: Path) -> InviteTicket | None:
        """Read `path` (missing: this node did not join with a single-use invite).

        Raises:
            StoreError: the file is not a ticket we wrote.
        """
        document = read_document(path, "an invite ticket")
        if document is None:
            return None
        try:
            if not isinstance(document, dict) or document.get("format") != _TICKET_FORMAT:
                raise ValueError("not an invite ticket")
            refused = document["refused"]
            if refused is not None and refused not in _REFUSALS:
                raise ValueError("an unknown refusal")
            nonce = bytes.fromhex(document["nonce"])
            if len(nonce) != 16:
                raise ValueError("a nonce has 16 bytes")
            return cls(
                inviter=decode_identity_text(document["inviter"]), nonce=nonce, refused=refused
            )
        except (ValueError, KeyError, TypeError, DecodeError) as exc:
            raise StoreError(f"{path} is not a valid invite ticket: {exc}") from None

    def save(self, path: Path) -> None:
        """Write the ticket to `path`, durably."""
        document = {
            "format": _TICKET_FORMAT,
            "version": 1,
            "inviter": encode_identity_text(self.inviter),
            "nonce": self.nonce.hex(),
            "refused": self.refused,
        }
        write_atomically(path, document)


class InviteDesk:
    """Both ends of single-use invites for one node; a gossip `SessionExtension`
    (`node.gossip.extensions`) for `redeem` and the `error` that refuses one.

    As inviter: `issue` records each single-use invite before its code is
    handed out; `redeem` binds a nonce to the first identity that presents it
    in time, refuses any other, and admits the joiner (`admit`). As joiner:
    `to_present` gives the ticket's nonce to the inviter, `refused` keeps the
    inviter's refusal (and stops presenting a ticket that cannot work).
    """

    def __init__(
        self,
        book: InviteBook,
        *,
        ticket: InviteTicket | None = None,
        ticket_path: Path | None = None,
        wall_clock_ms: Callable[[], int],
        admit: Callable[[frozenset[IdentityId]], None],
        chain_of: ChainOf | None = None,
    ) -> None:
        """`chain_of(key)` gives the root keys that succeeded `key` as our store
        knows them (SPEC §17); None: each key is its own member."""
        self.book = book
        self.ticket = ticket
        self._ticket_path = ticket_path
        self._clock = wall_clock_ms
        self._admit = admit
        self._chain_of = chain_of
        self.refusals = RedeemRefusals()  # for `trustnode status`: why a neighbour could not join
        self._lock = trio.Lock()  # one redemption at a time: two joiners race for one nonce
        # How to send on each live session whose peer named `invites` (SessionExtension).
        self._links: dict[IdentityId, Send] = {}
        if len(book):  # what a restart after a long stop finds settled (a new book: nothing)
            book.forget_settled(wall_clock_ms())
        admit(book.redeemed_by())

    @classmethod
    def in_folder(
        cls, folder: Path, *, wall_clock_ms: Callable[[], int],
        admit: Callable[[frozenset[IdentityId]], None], chain_of: ChainOf | None = None,
    ) -> InviteDesk:  # fmt: skip
        """The desk of the data directory `folder`.

        Raises:
            StoreError: `invites.json` or `invite.json` is damaged.
        """
        return cls(
            InviteBook.load(folder / INVITES_FILE),
            ticket=InviteTicket.load(folder / TICKET_FILE),
            ticket_path=folder / TICKET_FILE,
            wall_clock_ms=wall_clock_ms,
            admit=admit,
            chain_of=chain_of,
        )

    def issue(self, invite: Invite) -> None:
        """Record a single-use invite (durably) before its code leaves the node.

        Raises:
            RequestError: `conflict`, too many single-use invites kept (`MAX_INVITES`).
        """
        if invite.nonce is not None:
            made = IssuedInvite(nonce=invite.nonce, expires_at_ms=invite.expires_at_ms)
            self.book.put(made, now_ms=self._clock())

    def to_present(self, peer: IdentityId) -> bytes | None:
        """The ticket's nonce when `peer` is our inviter and has not refused it."""
        ticket = self.ticket
        if ticket is None or ticket.refused is not None or ticket.inviter != peer:
            return None
        return ticket.nonce

    async def redeem(self, peer: IdentityId, nonce: bytes) -> None:
        """Bind `nonce` to `peer` (durably, then admit it), or refuse.

        A nonce this node never issued grants nothing and is ignored (invites
        made before the book existed, or a guess: both harmless).

        Raises:
            VerificationError: `INVITE_USED` or `INVITE_EXPIRED`.
        """
        async with self._lock:
            record = self.book.get(nonce)
            now_ms = self._clock()
            if record is None:
                log.info("peer %s presented an invite we did not make", short_identity_text(peer))
                self.refusals.note(peer, nonce, UNKNOWN, now_ms=now_ms)
                return
            try:
                after = redeem(await self._rebound(record, peer), peer, now_ms=now_ms)
            except VerificationError as exc:
                log.warning(
                    "peer %s: invite refused (%s)", short_identity_text(peer), exc.reason.value
                )
                self.refusals.note(peer, nonce, exc.reason.value, now_ms=now_ms)
                raise
            if after == record:
                return  # the joiner's later connections: nothing new
            put = functools.partial(self.book.put, after, now_ms=now_ms)
            if self.book.path is None:
                put()  # in memory: nothing to wait for
            else:
                await trio.to_thread.run_sync(put)  # fsync off the loop
        self._admit(frozenset({peer}))
        log.info("peer %s redeemed a single-use invite", short_identity_text(peer))

    async def _rebound(self, record: IssuedInvite, peer: IdentityId) -> IssuedInvite:
        """`record` bound to `peer` if it is bound to an earlier root key of `peer`'s
        member (the joiner rotated, SPEC §17), else `record` as it is.

        The joiner presents on every connection, with the key its node proves:
        after a rotation, its next one. Only a rotation we hold moves the
        binding (signed by the key the bound one committed to), and then it
        moves for good, to the key in use.
        """
        bound = record.used_by
        if bound is None or bound == peer or self._chain_of is None:
            return record
        if peer not in await self._chain_of(bound):  # later keys only, never back
            return record
        log.info("peer %s: its invite moves to it from its previous key",
                 short_identity_text(peer))  # fmt: skip
        return IssuedInvite(nonce=record.nonce, expires_at_ms=record.expires_at_ms, used_by=peer)

    async def use(
        self, code: str, *, community_id: bytes, me: IdentityId, connect: Callable[[str], None]
    ) -> Invite:
        """A running member uses an invite to its own community (the web app's join).

        A node is one community, so an invite to another one cannot be used here
        (`trustnode join` makes a new data directory for it). To ours, it adds the
        inviter's addresses as peers and, for a single-use invite, keeps it as the
        ticket to present (it replaces an older one: the newest invite is the one
        its person just chose to use). `code` may be the whole
        `trustnode join tninvite1_...` line the invite page shows.

        Raises:
            RemoteProtocolError: the code does not verify, or it has expired.
            RequestError: `bad_value`, an invite to another community or our own.
            OSError: the ticket cannot be written.
        """
        words = code.split()
        made = decode_invite(words[-1] if words else "")
        check_invite(made, now_ms=self._clock())
        if made.community_id != community_id:
            raise RequestError(
                "bad_value",
                "this invite is to another community: join it in another folder "
                "(trustnode --community NAME join CODE)",
            )
        if made.inviter == me:
            raise RequestError("bad_value", "this is one of your own invites")
        for address in made.bootstrap:
            if is_dialable(address, local=True):
                connect(address)
        ticket = InviteTicket.of(made)
        if ticket is not None:
            self.ticket = ticket
            if self._ticket_path is not None:
                await trio.to_thread.run_sync(ticket.save, self._ticket_path)
            await self.present(made.inviter)  # connected already: no new hello to carry it
        return made

    # -- the gossip session's side (node.gossip.extensions.SessionExtension) ----------

    def greeted(self, peer: IdentityId, capabilities: tuple[str, ...],
                stream: object, send: Send) -> None:  # fmt: skip
        """A peer's hello arrived: remember how to reach it if it answers `redeem`."""
        if INVITES_CAPABILITY in capabilities:
            self._links[peer] = send
        else:
            self._links.pop(peer, None)

    def ended(self, peer: IdentityId) -> None:
        """A session ended; a replacing one, greeted already, keeps its link."""

    @staticmethod
    def handles(message: Message) -> bool:
        """Ours: hello (to present our ticket after it), `redeem`, and `error`."""
        return isinstance(message, Hello | Redeem | ErrorMessage)

    async def receive(self, peer: IdentityId, message: Message,
                      stream: object, send: Send) -> None:  # fmt: skip
        """Present our ticket after the inviter's hello; judge a `redeem`; note a refusal.

        Raises:
            VerificationError: a `redeem` refused (`INVITE_USED`, `INVITE_EXPIRED`):
                the session sends it as `error` and closes.
        """
        if isinstance(message, Hello):
            await self.present(peer)
        elif isinstance(message, Redeem):
            await self.redeem(peer, message.nonce)
        elif isinstance(message, ErrorMessage):
            self.refused(peer, message.code, message.detail)

    async def present(self, peer: IdentityId) -> None:
        """Send our ticket's nonce to `peer` if it is our inviter, connected, naming `invites`.

        Every connection to the inviter presents it again: the first binds it,
        the next ones are idempotent (SPEC §12.2). A key that succeeded the one
        the invite names is our inviter too (the same member, SPEC §17): an
        invite outlives its inviter's rotation. Only a rotation in our store
        says so; `run` tries again as the store learns one.
        """
        nonce = self.to_present(peer)
        if nonce is None and peer in self._links and peer in await self._inviter_chain():
            nonce = self._pending_nonce()
        await self._send_nonce(peer, nonce)

    async def _send_nonce(self, peer: IdentityId, nonce: bytes | None) -> None:
        send = self._links.get(peer)
        if send is not None and nonce is not None:
            # A link of a session that ended since: the next connection presents it.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await send(Redeem(nonce=nonce))

    def _pending_nonce(self) -> bytes | None:
        """The ticket's nonce while the inviter has not refused it."""
        ticket = self.ticket
        return None if ticket is None or ticket.refused is not None else ticket.nonce

    async def _inviter_chain(self) -> frozenset[IdentityId]:
        """The later root keys of our pending ticket's inviter (empty: none known);
        never an earlier one: a key rotated away could take our nonce and redeem it."""
        ticket = self.ticket
        if self._pending_nonce() is None or ticket is None or self._chain_of is None:
            return frozenset()
        return await self._chain_of(ticket.inviter)

    async def run(self, stored_signal: Callable[[], trio.Event], *, every_s: float = 5.0) -> None:
        """Present a pending ticket to our inviter's successor once the store learns
        of the rotation (the first sync with it brings it). One read of the key
        chains a wake, at most once every `every_s` seconds, and only while a
        ticket waits and a session with another peer than the inviter is open."""
        while True:
            signal = stored_signal()
            ticket = self.ticket
            others = [] if ticket is None else [p for p in self._links if p != ticket.inviter]
            if others and self._pending_nonce() is not None:
                chain = await self._inviter_chain()
                for peer in [p for p in others if p in chain]:
                    await self._send_nonce(peer, self._pending_nonce())
            await signal.wait()
            await trio.sleep(every_s)

    async def retire_ticket(self) -> None:
        """Stop presenting our ticket, for good: the key it was presented with is gone.

        After `key rotate --lost` this node proves the lost key's successor, which
        the inviter cannot link to the fresh key that joined (nothing signed by one
        names the other): presenting the nonce again is refused as used by another
        identity, an error to the member right after a recovery that worked. The
        invite did its work: the member's standing is the lost key's now.
        """
        if self.ticket is None:
            return
        self.ticket = None
        path = self._ticket_path
        if path is not None:
            await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    def refused(self, peer: IdentityId, code: str, detail: str) -> None:
        """Our inviter refused our invite: say so plainly, keep it, stop presenting it."""
        ticket = self.ticket
        if ticket is None or ticket.inviter != peer or code not in _REFUSALS:
            return
        log.error(
            "the inviter %s refused our invite (%s): %s",
            short_identity_text(peer), code, refusal_words(code),
        )  # fmt: skip
        if ticket.refused is None:
            self.ticket = InviteTicket(inviter=ticket.inviter, nonce=ticket.nonce, refused=code)
            if self._ticket_path is not None:
                self.ticket.save(self._ticket_path)


def _no_admission(identities: frozenset[IdentityId]) -> None:
    """A node without relay policy stores everything valid: nothing to admit."""


def open_invite_desk(
    folder: Path | None, *, gossip: GossipNode, gate: RelayGate | None,
    wall_clock_ms: Callable[[], int], chain_of: ChainOf | None = None,
) -> InviteDesk:  # fmt: skip
    """The desk of data directory `folder` (None: in memory), wired to the node's
    gossip (as a session extension, replacing an earlier desk; hello then names
    `invites`), relay gate and key chains (`chain_of`).

    Raises:
        StoreError: `invites.json` or `invite.json` is damaged.
    """
    admit = _no_admission if gate is None else gate.admit
    if folder is None:
        desk = InviteDesk(
            InviteBook(None), wall_clock_ms=wall_clock_ms, admit=admit, chain_of=chain_of
        )
    else:
        desk = InviteDesk.in_folder(
            folder, wall_clock_ms=wall_clock_ms, admit=admit, chain_of=chain_of
        )
    gossip.extensions[:] = [e for e in gossip.extensions if not isinstance(e, InviteDesk)]
    gossip.extensions.append(desk)
    if INVITES_CAPABILITY not in gossip.capabilities:
        gossip.capabilities = (*gossip.capabilities, INVITES_CAPABILITY)
    return desk
