"""Paper backups: 24 BIP-39 words give back the same key (node.home.backup)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.home.backup import BackupError, key_from_words, words_of
from protocol.identity import IdentityKey


@given(st.binary(min_size=32, max_size=32))
def test_words_give_back_the_same_identity(seed: bytes) -> None:
    key = IdentityKey.from_seed(seed)
    words = words_of(key)
    assert len(words) == 24
    assert key_from_words("  ".join(words).upper()).identity == key.identity


def test_bad_backups_are_refused_with_a_reason() -> None:
    words = words_of(IdentityKey.from_seed(bytes(range(32))))
    with pytest.raises(BackupError, match="24 words"):
        key_from_words(" ".join(words[:23]))
    with pytest.raises(BackupError, match="not a backup word"):
        key_from_words(" ".join(["trustnode", *words[1:]]))
    swapped = [words[1], words[0], *words[2:]]
    with pytest.raises(BackupError, match="checksum"):
        key_from_words(" ".join(swapped))
