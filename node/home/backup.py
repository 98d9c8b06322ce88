"""Paper backups of a key: 24 BIP-39 words for its 32-byte seed.

The words are the seed itself (BIP-39 *entropy* encoding, English word list,
with its 8-bit checksum), not a BIP-39 seed derivation: restoring gives the same
Ed25519 key, hence the same identity. Why BIP-39: a maintained word list
(`mnemonic`, the reference implementation) whose checksum catches a mistyped
or swapped word, and whose words are unique in their first four letters.
Back up the *next* key of a rotation (SPEC §17) this way and keep it offline.
"""

from __future__ import annotations

from mnemonic import Mnemonic

from node.errors import KeyFileError
from protocol.identity import IdentityKey

__all__ = ["BackupError", "key_from_words", "words_of"]

_WORDS = 24
_LIST = Mnemonic("english")


class BackupError(KeyFileError):
    """Backup words that do not give a key (wrong count, unknown word, bad checksum)."""


def words_of(key: IdentityKey) -> list[str]:
    """The 24 words that give back `key`."""
    return _LIST.to_mnemonic(key.seed).split()


def key_from_words(text: str) -> IdentityKey:
    """The key that `text` (24 words, any spacing or case) encodes.

    Raises:
        BackupError: not 24 words, a word outside the list, or a failed checksum.
    """
    words = text.lower().split()
    if len(words) != _WORDS:
        raise BackupError(f"a key backup has {_WORDS} words, not {len(words)}")
    unknown = [w for w in words if w not in _LIST.wordlist]
    if unknown:
        raise BackupError(f"not a backup word: {unknown[0]!r}")
    phrase = " ".join(words)
    if not _LIST.check(phrase):
        raise BackupError("the words' checksum does not match: a word is wrong or misplaced")
    return IdentityKey.from_seed(bytes(_LIST.to_entropy(phrase)))
