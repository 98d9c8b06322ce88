"""Errors of the runtime layer, under the protocol's `TrustnodeError` (STYLE §2)."""

from __future__ import annotations

from protocol.errors import TrustnodeError

__all__ = ["ConfigError", "KeyFileError", "RequestError", "StoreCorruptError", "StoreError"]


class ConfigError(TrustnodeError):
    """Configuration or command-line input that we refuse, with one clear line."""


class StoreError(TrustnodeError):
    """The data directory cannot be read or written safely."""


class KeyFileError(StoreError):
    """The node's key file is missing, unreadable, exposed or corrupt."""


class RequestError(TrustnodeError):
    """A request to the node (embedding API, HTTP API, CLI) that it refuses.

    `code` is stable: the HTTP API returns it and scripts may match on it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StoreCorruptError(StoreError):
    """The store's file is damaged (SQLite reports corruption): the node must stop.

    Unlike a full disk, this does not heal by waiting: every retry meets the
    same bad pages. The message says what to do (README, "A damaged store").
    """
