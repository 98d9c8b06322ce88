"""A damaged store is told apart, found by the quick check, and salvaged (issue 21, defect 4)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.errors import StoreCorruptError, StoreError
from node.store import Store
from node.store.health import is_corruption, store_error
from protocol.attestation import decode_envelope
from tests.node.store_damage import damage, fill_store

pytestmark = pytest.mark.slow  # a store of 1500 signed attestations


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    fill_store(path, 1500)
    damage(path, start=0.75, length=0.0)  # one page
    return path


def test_quick_check_finds_one_bad_page(damaged: Path) -> None:
    with Store.open(damaged) as store:
        with pytest.raises(StoreCorruptError) as caught:
            store.quick_check(timeout_s=10)
        assert "export" in str(caught.value)  # says what to do


def test_quick_check_passes_a_sound_store_and_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    fill_store(path, 200)
    with Store.open(path) as store:
        assert store.quick_check(timeout_s=10) is True
        assert store.quick_check(timeout_s=0) is False  # time ran out: no verdict
        assert store.quick_check(timeout_s=10) is True  # the handler was removed


def test_salvage_reads_what_the_bad_pages_left(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    fill_store(path, 1500)
    damage(path, start=0.2, length=0.3)
    with Store.open(path) as store:
        with pytest.raises(StoreCorruptError):
            store.ids_in_order(limit=5000)
        saved = store.salvage_envelopes()
    assert 0 < len(saved) < 1500
    for envelope in saved:
        decode_envelope(envelope)


def test_corruption_is_told_apart_from_a_full_disk() -> None:
    malformed = sqlite3.DatabaseError("database disk image is malformed")
    malformed.sqlite_errorcode = 11
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13
    assert is_corruption(malformed)
    assert not is_corruption(full)
    assert isinstance(store_error("s", "", malformed), StoreCorruptError)
    made = store_error("s", "", full)
    assert isinstance(made, StoreError)
    assert not isinstance(made, StoreCorruptError)
