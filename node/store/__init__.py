"""Durable attestation storage on SQLite, and the ingest pipeline in front of it (DESIGN §7)."""

from __future__ import annotations

from node.store.interface import AttestationStore
from node.store.memory import MemoryStore
from node.store.pipeline import DEFAULT_BATCH_SIZE, DEFAULT_MAX_SKEW_MS, IngestError, ingest
from node.store.records import (
    Change,
    IngestReport,
    ItemReport,
    Outcome,
    StoreStatistics,
    TrustEdge,
)
from node.store.schema import LATEST_VERSION
from node.store.store import Store

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_SKEW_MS",
    "LATEST_VERSION",
    "AttestationStore",
    "Change",
    "IngestError",
    "IngestReport",
    "ItemReport",
    "MemoryStore",
    "Outcome",
    "Store",
    "StoreStatistics",
    "TrustEdge",
    "ingest",
]
