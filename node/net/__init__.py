"""Streams between nodes: the Noise transport over TCP, the simulated network, addresses.

Everything here moves bytes and knows nothing of attestations: `transport`
(secure streams over TCP, SPEC §10-§11), `simnet` (the same stream interface
over an in-memory network with latency, loss and partitions, for tests and
simulations) and `addresses` (which of our addresses a neighbour can dial,
which peer addresses are worth sharing).
"""
