"""trustnode's runtime: storage, transport, gossip, trust engine, API and CLI (DESIGN §2).

Unlike `protocol/`, this package does I/O (except `node.trust`, which is pure).
Built so far: the key file and data directory, the SQLite store and its ingest
pipeline (`node.store`), the Noise transport (`node.transport`), gossip and
reconciliation (`node.gossip`), the peer manager (`node.peers`), the relay
policy (`node.relay`), the simulated network (`node.simnet`), the trust engine
(`node.trust`) and the command line. The daemon and its HTTP API come next.
"""
