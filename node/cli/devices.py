"""`trustnode device …`: one identity on several machines (SPEC §16).

On the new machine (its own data directory and key): `trustnode device add ROOT`
publishes a pairing request and prints a code. On a machine with the root key:
`trustnode device approve CODE`. `device list` shows whom this node speaks for
and the member's devices; `device revoke KEY` ends a lost one.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from node.api.identity import DevicesView, PairingView, SuccessionView
from node.api.models import AttestationView
from node.cli.client import call
from node.cli.common import console, emit_json, place_of
from node.cli.render import line, short

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def device() -> None:
    """One identity on several machines: pair, approve, list and revoke device keys."""


@device.command("add")
@click.argument("root")
@_JSON
@click.pass_context
def add(ctx: click.Context, root: str, as_json: bool) -> None:
    """Ask to speak for ROOT (a tn_ identity) from this machine; prints the pairing code."""
    answer = call(place_of(ctx), "POST", "/v1/devices/pair", json={"root": root})
    view = PairingView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("pairing code: [bold]{code}[/bold]", code=view.code))
    console.print(
        line("on a machine holding {root}'s key, run: trustnode device approve {code}",
             root=short(view.attestation.subject), code=view.code)
    )  # fmt: skip


@device.command("approve")
@click.argument("code")
@_JSON
@click.pass_context
def approve(ctx: click.Context, code: str, as_json: bool) -> None:
    """Authorise the device that shows CODE to speak for this identity."""
    answer = call(place_of(ctx), "POST", "/v1/devices/approve", json={"code": code.lower()})
    view = AttestationView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("{device} now speaks for you", device=view.subject))


@device.command("revoke")
@click.argument("key")
@_JSON
@click.pass_context
def revoke(ctx: click.Context, key: str, as_json: bool) -> None:
    """Revoke device KEY from now on (what it signed before keeps counting)."""
    answer = call(place_of(ctx), "POST", "/v1/devices/revoke", json={"device": key})
    view = AttestationView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("{device} is revoked from now on", device=view.subject))


@device.command("list")
@_JSON
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Whom this node speaks for, its devices and pending pairing requests."""
    view = DevicesView.model_validate(call(place_of(ctx), "GET", "/v1/devices").body)
    if as_json:
        emit_json(view)
        return
    if view.member == view.key:
        console.print(line("this key {key} is its own identity", key=view.key))
    else:
        console.print(line("this key {key} speaks for {member}", key=view.key, member=view.member))
    for d in view.devices:
        state = "active" if d.cutoff_ms is None else f"revoked at {d.cutoff_ms}"
        console.print(line("device {key} ({code}): {state}", key=d.key, code=d.code, state=state))
    for d in view.pending:
        console.print(line("pending {key}: approve with {code}", key=d.key, code=d.code))


@device.command("chain")
@click.argument("subject")
@_JSON
@click.pass_context
def chain(ctx: click.Context, subject: str, as_json: bool) -> None:
    """SUBJECT as a member: its rotated root keys (first to current) and its devices."""
    answer = call(place_of(ctx), "GET", f"/v1/identity/{quote(subject, safe='')}")
    view = SuccessionView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("member {member}", member=view.member))
    for link in view.chain:
        when = "current" if link.rotated_at_ms is None else f"rotated away at {link.rotated_at_ms}"
        console.print(line("  root key {key}: {when}", key=link.key, when=when))
    for d in view.devices:
        state = "active" if d.cutoff_ms is None else f"revoked at {d.cutoff_ms}"
        console.print(line("  device {key}: {state}", key=d.key, state=state))
