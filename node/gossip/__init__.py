"""Replication: how attestations travel between members (SPEC §6-§9, §13).

`gossip_node.GossipNode` is the I/O shell around the pure state machines of
`protocol/`, composed of parts: `session` (one connection: capabilities,
outbox, receive budget), `push` (the push tree, `protocol.pushtree`),
`source_trees` (each issuer's own tree, `protocol.routes`), `reconcile` (sync
sessions, `protocol.sync`), `intake` (verify, admit, store, forward),
`exchange` (peer exchange on a session) and `stores` (reaching the
synchronous store). Around it: `peers` chooses whom to keep connected;
`relay` decides what we agree to store and forward from whom; `policy` is
what a protocol error costs a peer; `signatures` checks bulk intake in a
worker process; `sketch_fast` is numpy's build of the sync sketches.
Extensions (SPEC §15): `reachability` (dial-back), `circuits` (relayed
sessions) and `punching` (moving a relayed session to a hole-punched link).
"""
