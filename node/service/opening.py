"""`open_node`: a node on a data directory, over TCP, on the system clock.

The daemon's (and an embedding app's) thin caller of `node.service.assemble`:
it opens the directory (key, store, petnames), takes its lock, checks the
store, builds the node and runs it until the caller's block ends.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import trio

from node.home.config import NodeConfig
from node.home.datadir import DataDir
from node.home.dirlock import lock_data_dir
from node.home.nextkey import KeyFiles
from node.names import PETNAMES_FILE, PetnameBook
from node.service.assemble import NodeParts, Stores, build_node, system_clock_ms
from node.service.networks import TcpNetwork
from node.service.node import Node
from node.service.rotation import has_rotation
from node.store import Store
from protocol.identity import IdentityKey

__all__ = ["open_node"]

log = logging.getLogger("trustnode.node")
_STORE_CHECK_S = 20.0  # a quick check reads about 100 MB/s on a slow disk


@asynccontextmanager
async def open_node(
    config: NodeConfig,
    *,
    network: bool = True,
    passphrase: bytes | None = None,
    wall_clock_ms: Callable[[], int] = system_clock_ms,
    rng: random.Random | None = None,
    create_key: bool = True,
) -> AsyncIterator[Node]:
    """Open the community's data directory and run its node until the block ends.

    The key is created on first use of a fresh directory (sealed with
    `passphrase` if given), unless `create_key` is false (the CLI's way: only
    `trustnode init` makes an identity); a directory whose store survives its
    key is always refused. With
    `network`, the node listens on `config.listen` and keeps connections to
    `config.bootstrap` and the peers it learns of. Leaving the block stops
    every task and closes the store; everything acknowledged is on disk. An
    exception from the block comes out as itself, not inside an ExceptionGroup.
    The node holds the data directory's lock (`node.home.dirlock`) while it is open:
    one node per directory, in any process.

    Raises:
        DataDirLockedError: another process (or node) has the directory open.
        StoreError: the data directory, key file or store cannot be used safely.
        ConfigError: the node cannot listen where it is configured to.
    """
    data = DataDir.open(config.data_dir)
    if create_key:
        key = data.load_or_create_key(passphrase=passphrase)
    else:
        key = data.load_key(passphrase=passphrase)
    with lock_data_dir(data.path), _opened_store(data) as (store, reader):
        if network:  # the daemon: refuse a damaged store before saying `ready`
            await trio.to_thread.run_sync(_check_store, store)
        files = KeyFiles(data, passphrase)
        key = await trio.to_thread.run_sync(_settled_key, files, store)
        node = build_node(
            NodeParts(
                config=config,
                key=key,
                stores=Stores(writer=store, reader=reader),
                network=TcpNetwork(config.listen, punchable=config.punch) if network else None,
                clock=wall_clock_ms,
                rng=rng or random.Random(),  # noqa: S311 - peer choice, not secrets
                petnames=PetnameBook.load(data.path / PETNAMES_FILE),
            )
        )
        node.keep_invites_in(data.path)
        node.key_files = files
        try:
            async with trio.open_nursery() as nursery:
                node.stop_with(nursery.cancel_scope)
                if network:
                    await node.start(nursery)
                    # The daemon's log lines name peers from the start (a simulation
                    # does not: it would build every member's trust engine).
                    nursery.start_soon(node.name_book)
                try:
                    yield node
                finally:
                    node.gossip.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise node.failure or _sole(group) from None
        finally:
            if node.signature_checker is not None:
                node.signature_checker.close()
        if node.failure is not None:
            raise node.failure


@contextmanager
def _opened_store(data: DataDir) -> Iterator[tuple[Store, Store]]:
    """The store's write connection and a second one for queries."""
    store = data.open_store()
    try:
        reader = data.open_store()
        try:
            yield store, reader
        finally:
            reader.close()
    finally:
        store.close()


def _settled_key(files: KeyFiles, store: Store) -> IdentityKey:
    """The key to sign with, after finishing a rotation a crash interrupted (nextkey.py)."""
    bindings = store.key_bindings()
    return files.settle(lambda new, after: has_rotation(bindings, new, after))


def _check_store(store: Store) -> None:
    """SQLite's quick check, bounded: a large store on a slow disk still starts."""
    started = time.monotonic()
    if not store.quick_check(timeout_s=_STORE_CHECK_S):
        log.warning("store check stopped after %.0f s: starting without it", _STORE_CHECK_S)
    log.debug("store checked in %.2f s", time.monotonic() - started)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside (nested) single-member groups, else the group itself.

    The node's tasks run in a nursery around the caller's block, so trio wraps
    whatever the block raises in an ExceptionGroup; the caller should get back
    the very exception it raised (or the one that stopped the node).
    """
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return inner
