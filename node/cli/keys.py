"""`trustnode key …`: this node's own root key and its pre-committed successor (SPEC §17).

`key` shows the key and whether a next key is kept and committed to; `key
commit` makes the next key (kept in the data directory, mode 0600, on disk
before anything names it) and publishes the one commitment to it; `key
rotate` reveals it: the next key signs the rotation, commits to a fresh
one, and the node signs with it from then on. Back the next key up and keep
it apart from this machine (`trustnode backup --next`): whoever holds it can
rotate you, and without it only custodians can (§18).
"""

from __future__ import annotations

import click

from node.api.rotation import KeyView
from node.cli.client import call
from node.cli.common import console, emit_json, place_of
from node.cli.render import line, short

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(invoke_without_command=True)
@_JSON
@click.pass_context
def key(ctx: click.Context, as_json: bool) -> None:
    """This node's key: show it, commit to the next key, rotate to it."""
    if ctx.invoked_subcommand is None:
        _show(KeyView.model_validate(call(place_of(ctx), "GET", "/v1/key").body), as_json)


@key.command("commit")
@_JSON
@click.pass_context
def commit(ctx: click.Context, as_json: bool) -> None:
    """Make the next key (or reuse the one kept) and publish the commitment to it."""
    view = KeyView.model_validate(call(place_of(ctx), "POST", "/v1/key/commit").body)
    _show(view, as_json)
    if not as_json:
        console.print(line("back the next key up, away from this machine: "
                           "trustnode backup --next"))  # fmt: skip


@key.command("rotate")
@click.option("--lost", "lost", metavar="KEY", default=None,
              help="Your lost root key (tn_…): rotate it with the next key restored here "
                   "(trustnode restore --next) instead of this node's key.")  # fmt: skip
@_JSON
@click.pass_context
def rotate(ctx: click.Context, lost: str | None, as_json: bool) -> None:
    """Rotate to the committed next key; it commits to a new next key at once.

    Lost the machine? On a new one: `trustnode join` (or init and sync), then
    `trustnode restore --next` with the paper words, then
    `trustnode key rotate --lost tn_…` with your old key: you sign as its
    successor, and your vouches and standing carry over.
    """
    body = None if lost is None else {"lost": lost}
    view = KeyView.model_validate(call(place_of(ctx), "POST", "/v1/key/rotate", json=body).body)
    _show(view, as_json)
    if not as_json:
        console.print(line("rotated: you sign as {key} now; your vouches and standing carry over."
                           " Back up the new keys: trustnode backup; trustnode backup --next",
                           key=short(view.key)))  # fmt: skip


def _show(view: KeyView, as_json: bool) -> None:
    if as_json:
        emit_json(view)
        return
    console.print(line("key:      {key}", key=view.key))
    if view.next_key is None:
        console.print(line("next key: none kept (trustnode key commit makes one)"))
    else:
        state = "committed" if view.committed else "NOT committed (trustnode key commit)"
        console.print(line("next key: {key} ({state})", key=short(view.next_key), state=state))
