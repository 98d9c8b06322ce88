"""Replication: how attestations travel between members (SPEC §6-§9, §13).

`gossip_node` is the I/O shell around the pure state machines of `protocol/`
(sessions, the push tree, reconciliation); `peers` chooses whom to keep
connected; `relay` decides what we agree to store and forward from whom;
`policy` is what a protocol error costs a peer; `signatures` checks bulk
intake in a worker process; `sketch_fast` is numpy's build of the sync sketches.
"""
