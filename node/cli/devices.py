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
from node.cli.common import console
from node.cli.render import line, short
from node.cli.replies import JSON_OPTION, answer_with


@click.group()
def device() -> None:
    """One identity on several machines: pair, approve, list and revoke device keys."""


@device.command("add")
@click.argument("root")
@JSON_OPTION
@click.pass_context
def add(ctx: click.Context, root: str, as_json: bool) -> None:
    """Ask to speak for ROOT (a tn_ identity) from this machine; prints the pairing code."""
    answer_with(ctx, "POST", "/v1/devices/pair", json={"root": root},
                read=PairingView.model_validate, show=_show_pairing, as_json=as_json)  # fmt: skip


def _show_pairing(view: PairingView) -> None:
    console.print(line("pairing code: [bold]{code}[/bold]", code=view.code))
    console.print(
        line("on a machine holding {root}'s key, run: trustnode device approve {code}",
             root=short(view.attestation.subject), code=view.code)
    )  # fmt: skip


@device.command("approve")
@click.argument("code")
@JSON_OPTION
@click.pass_context
def approve(ctx: click.Context, code: str, as_json: bool) -> None:
    """Authorise the device that shows CODE to speak for this identity."""
    answer_with(
        ctx, "POST", "/v1/devices/approve", json={"code": code.lower()},
        read=AttestationView.model_validate, as_json=as_json,
        show=lambda view: console.print(line("{device} now speaks for you", device=view.subject)),
    )  # fmt: skip


@device.command("revoke")
@click.argument("key")
@JSON_OPTION
@click.pass_context
def revoke(ctx: click.Context, key: str, as_json: bool) -> None:
    """Revoke device KEY from now on (what it signed before keeps counting)."""
    answer_with(
        ctx, "POST", "/v1/devices/revoke", json={"device": key},
        read=AttestationView.model_validate, as_json=as_json,
        show=lambda view: console.print(
            line("{device} is revoked from now on", device=view.subject)),
    )  # fmt: skip


@device.command("list")
@JSON_OPTION
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Whom this node speaks for, its devices and pending pairing requests."""
    answer_with(ctx, "GET", "/v1/devices", read=DevicesView.model_validate, show=_show_devices,
                as_json=as_json)  # fmt: skip


def _show_devices(view: DevicesView) -> None:
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
@JSON_OPTION
@click.pass_context
def chain(ctx: click.Context, subject: str, as_json: bool) -> None:
    """SUBJECT as a member: its rotated root keys (first to current) and its devices."""
    answer_with(ctx, "GET", f"/v1/identity/{quote(subject, safe='')}",
                read=SuccessionView.model_validate, show=_show_chain, as_json=as_json)  # fmt: skip


def _show_chain(view: SuccessionView) -> None:
    console.print(line("member {member}", member=view.member))
    for link in view.chain:
        when = "current" if link.rotated_at_ms is None else f"rotated away at {link.rotated_at_ms}"
        console.print(line("  root key {key}: {when}", key=link.key, when=when))
    for d in view.devices:
        state = "active" if d.cutoff_ms is None else f"revoked at {d.cutoff_ms}"
        console.print(line("  device {key}: {state}", key=d.key, state=state))
