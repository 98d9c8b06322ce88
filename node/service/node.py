"""`Node`: one community member's node, as an object any trio program can hold.

The daemon (`trustnode run`), the local HTTP API, `trustnode demo`, apps that
embed trustnode and every member of a simulation use this one class, so there
is one code path from "sign this" to "it is on disk and on its way to every
peer":

* `trust` / `distrust` / `certify` / `rate` / `revoke` sign with the node's key
  and return once the attestation is **committed** to the store (acknowledged
  = durable), then push it to the connected peers (`node.service.publishing`);
* `score` / `explain` / `claim` / `rating` / `ranking` answer from the node's
  own point of view, from a `TrustEngine` that catches up with the store's
  change feed before each answer (`node.service.questions`);
* `changes()` follows everything stored, from any source, in arrival order
  (`node.service.reading`);
* `start`, `peers`, `invite`, `status`: the network and health
  (`node.service.networking`).

A node is built by `node.service.assemble.build_node` from explicit parts;
`open_node` (node/service/opening.py) builds one on a data directory, TCP and
the system clock. Store work runs in a worker thread (SQLite blocks); trust
computations run in another, one at a time, so neither stalls the event loop
that serves peers (in a simulation both run inline, on trio's MockClock).
"""

from __future__ import annotations

import functools

from node.service.identity import DeviceKeys
from node.service.networking import Networking
from node.service.publishing import Publishing
from node.service.questions import Questions
from node.service.reading import Reading
from node.service.recovery import Custodians
from node.service.rotation import KeyRotation
from protocol.identity import IdentityKey

__all__ = ["Node"]


class Node(Publishing, Questions, Reading, Networking):
    """A running node; make it with `open_node` or `node.service.assemble.build_node`.

    Its methods live in its parts (see the module doc); the state they share
    is `node.service.core.NodeCore`.
    """

    @functools.cached_property
    def devices(self) -> DeviceKeys:
        """Device keys (SPEC §16): pairing, approval, revocation (node.service.identity)."""
        return DeviceKeys(
            identity=self.identity, store=self._store, issue=self.issue, clock=self._clock
        )

    @functools.cached_property
    def custodians(self) -> Custodians:
        """Custodians and recovery (SPEC §18): designate, recover, veto (node.service.recovery)."""
        return Custodians(
            identity=self.identity, store=self._store, issue=self.issue, clock=self._clock
        )

    @functools.cached_property
    def keys(self) -> KeyRotation:
        """This node's own key (SPEC §17): commit to a next key, rotate (node.service.rotation)."""
        return KeyRotation(
            files=self.key_files, key=lambda: self._key, store=self._store, issue=self.issue,
            ingest=self.import_envelopes, replace_key=self.replace_key, clock=self._clock,
            retire_ticket=lambda: self.invites.retire_ticket(),
        )  # fmt: skip

    def replace_key(self, key: IdentityKey) -> None:
        """Sign with `key` from now on: the next key, once a rotation is stored (§17).

        The device and custodian views are rebuilt on their next use, with the
        new key; the network parts keep the key they started with until the
        next start (node.service.rotation explains why that is safe).
        """
        self._key = key
        for view in ("devices", "custodians"):
            self.__dict__.pop(view, None)
