"""trustnode's runtime: storage, transport, gossip, trust engine, API and CLI (DESIGN §2).

Unlike `protocol/`, this package does I/O. It is built up issue by issue; what
exists so far is the key file and the command line around the protocol.
"""
