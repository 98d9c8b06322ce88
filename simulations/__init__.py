"""Scenario runner: many real nodes on a simulated network (DESIGN §2).

Empty until the replication layer exists; scenarios will run the same `node`
code as the daemon, on trio's `MockClock`.
"""
