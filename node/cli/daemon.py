"""Commands that make, join, run and inspect a community's node: init, join, run,
invite, connect, status, peers."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import trio

from node.api.access import ADDRESS_FILE, ensure_token, read_token
from node.api.models import InviteView, PeerView, StatusView
from node.cli import render
from node.cli.client import call, load
from node.cli.common import (
    EXIT_INVALID,
    EXIT_UNAVAILABLE,
    Place,
    console,
    emit_json,
    fail,
    place_of,
)
from node.cli.render import line
from node.errors import ConfigError, StoreError
from node.home.config import (
    CONFIG_FILE,
    NodeConfig,
    check_config,
    new_community,
    render_config,
    with_overrides,
)
from node.home.datadir import DataDir
from node.home.logs import configure_logging
from node.net.addresses import is_dialable, is_local_only
from protocol.errors import RemoteProtocolError
from protocol.identity import encode_identity_text
from protocol.invite import Invite, check_invite, decode_invite

log = logging.getLogger("trustnode.daemon")
_LISTEN = click.option("--listen", help="Where peers connect (host:port).")
_API = click.option("--api-listen", help="The local API (host:port or unix:/path).")
_BOOTSTRAP = click.option("--bootstrap", multiple=True, help="A peer's host:port; repeatable.")
_ADVERTISE = click.option(
    "--advertise", multiple=True, metavar="HOST:PORT",
    help="Where neighbours can dial this node (default: the listen address, or the "
    "machine's addresses when listening on 0.0.0.0); repeatable.",
)  # fmt: skip
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


_LOSS_HINT = (
    "To outlive a lost machine: [bold]trustnode key commit[/] and [bold]trustnode backup "
    "--next[/] (words for paper), and name custodians (README: your identity outlives a key)."
)


def _overrides(**given: Any) -> dict[str, object]:
    names = {
        "listen": "network.listen",
        "api_listen": "api.listen",
        "bootstrap": "network.bootstrap",
        "advertise": "network.advertise",
        "log_format": "log.format",
        "log_level": "log.level",
    }
    return {names[k]: list(v) if isinstance(v, tuple) else v for k, v in given.items() if v}


def _create(place: Place, config: NodeConfig) -> str:
    """Write config, key, token and an empty store; return the new identity."""
    path = place.data_dir / CONFIG_FILE
    if path.exists():
        fail(f"{place.data_dir} is already initialised ({path} exists)")
    try:
        check_config(config)  # flags are validated like the file, before anything is made
    except ConfigError as exc:
        fail(str(exc))
    try:
        data = DataDir.open(place.data_dir)
        key = data.load_or_create_key()
        data.open_store().close()
        ensure_token(place.data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(render_config(config))
    except (StoreError, OSError) as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    return encode_identity_text(key.identity)


def _apply_flags(
    config: NodeConfig, listen: str | None, api_listen: str | None,
    bootstrap: tuple[str, ...], advertise: tuple[str, ...] = (),
) -> NodeConfig:  # fmt: skip
    # Validated by the same parsers as the file: write it, read it back.
    changes: dict[str, object] = {}
    if advertise:
        changes["advertise"] = advertise
    if listen:
        changes["listen"] = listen
    if api_listen:
        changes["api_listen"] = api_listen
    if bootstrap:
        changes["bootstrap"] = bootstrap
    return with_overrides(config, **changes)


@click.command()
@click.option("--open", "is_open", is_flag=True, help="An open community (public key).")
@click.option("--community-id", help="Join an existing community: its id (64 hex).")
@click.option("--community-key", help="... and its key (64 hex; omit with --open).")
@_LISTEN
@_API
@_BOOTSTRAP
@_ADVERTISE
@click.pass_context
def init(
    ctx: click.Context, is_open: bool, community_id: str | None, community_key: str | None,
    listen: str | None, api_listen: str | None, bootstrap: tuple[str, ...],
    advertise: tuple[str, ...],
) -> None:  # fmt: skip
    """Create this community's data directory: config, key, API token, store."""
    place = place_of(ctx)
    config = new_community(place.community, data_dir=place.data_dir, is_open=is_open)
    try:
        if community_id is not None:
            key = None if is_open or community_key is None else bytes.fromhex(community_key)
            if not is_open and key is None:
                fail("give --community-key (or --open) with --community-id")
            config = with_overrides(config, community_id=bytes.fromhex(community_id),
                                    community_key=key)  # fmt: skip
        config = _apply_flags(config, listen, api_listen, bootstrap, advertise)
    except ValueError:
        fail("community id and key are 64 hexadecimal digits")
    identity = _create(place, config)
    console.print(line("Initialised community [bold]{name}[/] in {folder}",
                       name=place.community, folder=str(place.data_dir)))  # fmt: skip
    console.print(line("  your identity: {identity}", identity=identity))
    console.print(line("  config:        {path} (edit it, or use flags)",
                       path=str(place.data_dir / CONFIG_FILE)))  # fmt: skip
    console.print("Next: [bold]trustnode run[/] (the daemon), then [bold]trustnode invite[/].")
    console.print(_LOSS_HINT)


@click.command()
@click.argument("code")
@_LISTEN
@_API
@_ADVERTISE
@click.option("--dry-run", is_flag=True, help="Only check the invite and show what it grants.")
@_JSON
@click.pass_context
def join(
    ctx: click.Context, code: str, listen: str | None, api_listen: str | None,
    advertise: tuple[str, ...], dry_run: bool, as_json: bool,
) -> None:  # fmt: skip
    """Join a community with an invite CODE: a data directory that bootstraps from the inviter."""
    try:
        made = decode_invite(code.strip())
        check_invite(made, now_ms=time.time_ns() // 1_000_000)
    except RemoteProtocolError as exc:
        fail(f"invalid invite: {exc.reason.value}", EXIT_INVALID)
    bootstrap = _dialable(made.bootstrap)
    inviter = encode_identity_text(made.inviter)
    view: dict[str, Any] = {
        "community_id": made.community_id.hex(),
        "open": made.community_key is None,
        "bootstrap": list(made.bootstrap),
        "inviter": inviter,
        "expires_at_ms": made.expires_at_ms,
        "single_use": made.nonce is not None,
    }
    if dry_run:
        if as_json:
            emit_json(view)
        else:
            kind = "open" if view["open"] else "closed"
            console.print(line(
                "valid invite to {kind} community {id}… from {inviter} via {via}", kind=kind,
                id=view["community_id"][:16], inviter=inviter, via=", ".join(made.bootstrap),
            ))  # fmt: skip
        return
    place = place_of(ctx)
    config = NodeConfig(
        data_dir=place.data_dir, name=place.community, community_id=made.community_id,
        community_key=made.community_key, bootstrap=bootstrap, relay_anchors=(inviter,),
    )  # fmt: skip
    identity = _create(place, _apply_flags(config, listen, api_listen, (), advertise))
    _keep_ticket(place.data_dir, made)
    if as_json:
        emit_json({**view, "identity": identity, "data_dir": str(place.data_dir)})
        return
    console.print(line("Joined community {id}… in {folder}",
                       id=made.community_id.hex()[:16], folder=str(place.data_dir)))  # fmt: skip
    console.print(line("  your identity: {identity}", identity=identity))
    console.print(line("  invited by:    {inviter}", inviter=inviter))
    if made.nonce is not None:
        console.print("  single-use:    your node redeems it when it first reaches the inviter")
    console.print("Next: [bold]trustnode run[/]; ask your inviter to vouch for you:")
    console.print(line("  trustnode trust {identity}", identity=identity))
    console.print(_LOSS_HINT)


def _keep_ticket(data_dir: Path, made: Invite) -> None:
    """A single-use invite's nonce, for the daemon to present to the inviter (SPEC §12)."""
    from node.service.invites import TICKET_FILE, InviteTicket  # the daemon's weight

    ticket = InviteTicket.of(made)
    if ticket is not None:
        ticket.save(data_dir / TICKET_FILE)


def _dialable(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """An invite's addresses that can be dialled; a one-line exit when none can.

    Invites made before `--advertise` existed may carry `0.0.0.0:7400`, which
    names no host; loopback ones reach the inviter only on this machine.
    """
    usable = tuple(a for a in addresses if is_dialable(a, local=True))
    if not usable:
        fail(
            f"this invite carries no address a neighbour can dial ({', '.join(addresses)}): "
            "ask the inviter for a new one (`trustnode invite --advertise HOST:PORT`)",
            EXIT_INVALID,
        )
    if is_local_only(usable):
        click.echo(
            f"warning: this invite reaches the inviter only on this machine ({', '.join(usable)})",
            err=True,
        )
    return usable


async def _serve(config: NodeConfig, token: str, ready: trio.Event) -> None:
    # The daemon's weight (web framework, trust engine) loads here, not for `status`.
    from node.api.app import create_app
    from node.api.server import serve_api
    from node.service import open_node

    async with open_node(config, create_key=False) as node:
        app = create_app(node, token=token, cors_origins=config.cors_origins)
        async with trio.open_nursery() as nursery:
            api = await nursery.start(
                functools.partial(serve_api, allow_remote=config.api_allow_remote),
                app,
                config.api_listen,
            )
            address_file = config.data_dir / ADDRESS_FILE
            address_file.write_text(api + "\n")
            try:
                click.echo(
                    f"ready: {encode_identity_text(node.identity)} peers={node.listen_address} "
                    f"api={api}",
                )
                sys.stdout.flush()  # a supervisor (or a test) waits for this line
                ready.set()
                await _report_progress(lambda: node.gossip.stored_from_peers)
            finally:
                _remove_if_ours(address_file, api + "\n")


def _remove_if_ours(path: Path, written: str) -> None:
    """Remove `path` only if it still holds what we wrote: a file another process
    replaced is its own (the data directory's lock makes that rare, not impossible:
    a user may copy a folder with a running daemon's files in it)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if path.read_text("ascii") == written:
            path.unlink()


async def _report_progress(stored: Callable[[], int], *, every_s: float = 5.0) -> None:
    """Log how fast attestations arrive from peers while they do (a join's progress)."""
    last = stored()
    while True:
        await trio.sleep(every_s)
        now = stored()
        if now > last:
            log.info(
                "sync: %d attestations stored from peers (%.0f/s)", now, (now - last) / every_s
            )
        last = now


async def _run_until_signal(config: NodeConfig, token: str) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            ready = trio.Event()
            nursery.start_soon(_serve, config, token, ready)
            async for received in signals:
                click.echo(f"stopping ({signal.Signals(received).name})")
                sys.stdout.flush()
                break
            nursery.cancel_scope.cancel()
    click.echo("stopped; everything acknowledged is on disk")


@click.command()
@_LISTEN
@_API
@_BOOTSTRAP
@_ADVERTISE
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines on stderr.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def run(ctx: click.Context, /, **flags: Any) -> None:
    """Run the node in the foreground until SIGINT or SIGTERM (a clean stop)."""
    place = place_of(ctx)
    config = load(place, _overrides(**flags))
    configure_logging(config.log_format, config.log_level)
    try:
        token = read_token(place.data_dir)  # only `init` makes one
        trio.run(_run_until_signal, config, token)
    except Exception as exc:
        problem = _first_of(exc, (StoreError, ConfigError))
        if problem is None:
            raise
        fail(str(problem), EXIT_UNAVAILABLE)


def _first_of(error: BaseException, kinds: tuple[type[Exception], ...]) -> Exception | None:
    """The first error of `kinds` in `error`, looking inside (nested) exception groups."""
    if isinstance(error, kinds):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _first_of(inner, kinds)) is not None:
                return found
    return None


@click.command()
@click.option("--expires-in", "expires_in_s", type=click.IntRange(min=1), default=7 * 86_400,
              show_default=True, help="Seconds.")  # fmt: skip
@click.option(
    "--single-use",
    is_flag=True,
    help="One identity only: this node binds it to the first joiner that presents it.",
)
@_ADVERTISE
@_JSON
@click.pass_context
def invite(
    ctx: click.Context, expires_in_s: int, single_use: bool, advertise: tuple[str, ...],
    as_json: bool,
) -> None:  # fmt: skip
    """Print an invite code to this community that bootstraps from this node."""
    body = {"expires_in_s": expires_in_s, "single_use": single_use, "advertise": list(advertise)}
    answer = call(place_of(ctx), "POST", "/v1/invites", json=body)
    view = InviteView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    click.echo(view.code)
    # On stderr, so that `CODE=$(trustnode invite)` still captures the code alone.
    click.echo(f"  carries: {', '.join(view.addresses)}", err=True)
    for warning in view.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("address")
@click.pass_context
def connect(ctx: click.Context, address: str) -> None:
    """Ask the running daemon to keep a connection to ADDRESS (host:port)."""
    call(place_of(ctx), "POST", "/v1/peers", json={"address": address})
    click.echo(f"connecting to {address}")


@click.command()
@_JSON
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """The node's identity, peers, store size and sync lag."""
    answer = call(place_of(ctx), "GET", "/v1/status")
    view = StatusView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(render.status_table(view, running=answer.via_daemon))


@click.command()
@_JSON
@click.pass_context
def peers(ctx: click.Context, as_json: bool) -> None:
    """The connected peers."""
    answer = call(place_of(ctx), "GET", "/v1/peers")
    views = [PeerView.model_validate(p) for p in answer.body]
    if as_json:
        emit_json(views)
        return
    if not answer.via_daemon:
        console.print("the daemon is not running: no peers")
        return
    console.print(render.peers_table(views))
