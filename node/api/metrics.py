"""Prometheus metrics from a status snapshot (prometheus-client's text format).

A fresh registry per scrape, filled from `Node.status()`: the node keeps its
own counters, and nothing global is registered, so several nodes in one
process (tests, the demo) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.service.records import NodeStatus
from protocol.identity import IdentityId, encode_identity_text

__all__ = ["render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    def __init__(self, status: NodeStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        s = self._status
        gauges = {
            "peers": ("connected peers", s.peers),
            "passive_addresses": ("known addresses in reserve", s.passive_addresses),
            "attestations": ("attestations stored", s.attestations),
            "heads": ("current slot heads", s.heads),
            "store_bytes": ("size of the store file", s.store_bytes),
            "uptime_seconds": ("seconds since the node started", s.uptime_s),
        }
        for name, (doc, value) in gauges.items():
            yield GaugeMetricFamily(f"trustnode_{name}", doc, value=value)
        if s.last_sync_age_s is not None:
            yield GaugeMetricFamily(
                "trustnode_last_sync_age_seconds", "since a reconciliation last ended",
                value=s.last_sync_age_s,
            )  # fmt: skip
        counters = {
            "stored_from_peers": ("attestations stored from peers", s.stored_from_peers),
            "payload_received_bytes": ("attestation bytes received", s.payload_bytes_received),
            "protocol_errors": ("sessions ended by a peer's protocol error", s.protocol_errors),
            "store_errors": ("sessions ended because the store refused a write", s.store_errors),
            "relay_refused": ("attestations refused by the relay quotas", s.relay_refused),
            "dial_failures": ("failed dials", s.dial_failures),
            "reachability_flaps": ("reachability verdicts that flipped", s.reachability_flaps),
            "circuit_relayed_bytes": ("circuit bytes relayed for others", s.circuit_relayed_bytes),
            "circuits_refused": ("circuits refused or closed over quota", s.circuits_refused),
            "punch_attempts": ("hole-punch rounds dialled", s.punch_attempts),
            "punch_successes": ("hole punches that ended in a direct session", s.punch_successes),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"trustnode_{name}", doc, value=value)
        yield from _punch_gauges(s)


def _punch_gauges(s: NodeStatus) -> Iterator[Metric]:
    """Punched sessions now, and each punched peer's time to direct (SPEC §15.4)."""
    yield GaugeMetricFamily(
        "trustnode_punched_sessions", "punched sessions running", value=s.punched_sessions
    )
    times = GaugeMetricFamily(
        "trustnode_punch_time_to_direct_seconds",
        "from a peer's relayed session to its punched one",
        labels=["peer"],
    )
    for peer, seconds in s.time_to_direct_s:
        times.add_metric([encode_identity_text(IdentityId(peer))], seconds)
    yield times


def render(status: NodeStatus) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(status))
    return generate_latest(registry), CONTENT_TYPE
