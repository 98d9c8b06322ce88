"""A member's folder on disk: configuration, data directory, key file, logs, lock.

Everything that knows a path lives here, so the rest of `node/` can be built
over a store in memory and a simulated network (the simulations do exactly that).
"""
