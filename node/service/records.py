"""What the embedding API returns besides attestations and trust answers."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.statement import Certify

__all__ = ["Certificate", "NodeStatus", "PeerInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    """A certification we issued, with the salt of its commitment (if any).

    The salt opens the commitment: give it to the subject, who may show it to
    whoever needs to check the private value. It is never stored or sent.
    """

    attestation: Attestation
    salt: bytes | None

    @property
    def claim(self) -> str:
        """The certified claim."""
        statement = self.attestation.statement
        assert isinstance(statement, Certify)
        return statement.claim


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerInfo:
    """A connected peer (identity, proven by the handshake)."""

    identity: IdentityId
    dialled: bool  # we opened the connection
    eager: bool  # we push payloads to it (else announce ids: the push tree)
    last_sync_age_s: float | None  # since the last reconciliation with it ended


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatus:
    """A snapshot for `trustnode status`, the API and the metrics."""

    identity: IdentityId
    community_id: bytes
    listen: str | None  # the bound peer address, None without networking
    advertised: tuple[str, ...]  # where it tells peers to dial it (invites, peer exchange)
    peers: int
    active_addresses: tuple[str, ...]
    passive_addresses: int
    attestations: int
    heads: int
    store_bytes: int
    stored_from_peers: int
    payload_bytes_received: int
    protocol_errors: int
    store_errors: int
    relay_refused: int
    dial_failures: int
    last_sync_age_s: float | None  # since any reconciliation last ended (the sync lag)
    uptime_s: float
    # "reachable at ..." / "behind NAT; ..." with [network] reachability_checks (SPEC §15.2)
    reachability: str | None = None
    reachability_flaps: int = 0  # verdicts that changed between reachable and not (§15.2)
    circuit_relayed_bytes: int = 0  # circuit bytes we forwarded for others (§15.3)
    circuits_refused: int = 0  # circuits we refused or closed over quota
    # "1 invite redemption refused in the last 24 h: already used" (SPEC §12.2), or None
    invite_refusals: str | None = None
    punch_attempts: int = 0  # punch rounds dialled (SPEC §15.4)
    punch_successes: int = 0  # punches that ended in a direct session
    punched_sessions: int = 0  # punched sessions running now
    # Each punched peer's seconds from its relayed session's hello to the direct one.
    time_to_direct_s: tuple[tuple[bytes, float], ...] = ()
