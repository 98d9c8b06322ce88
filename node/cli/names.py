"""Names for people: `name`, `names`, `unname` (petnames), `profile` (our own name), `find`."""

from __future__ import annotations

from urllib.parse import quote

import click

from node.api.models import AttestationView, FoundView, NameView, PetnameView
from node.cli import render
from node.cli.client import call
from node.cli.common import console, emit_json, place_of
from node.cli.render import line

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command()
@click.argument("subject")
@click.argument("petname")
@_JSON
@click.pass_context
def name(ctx: click.Context, subject: str, petname: str, as_json: bool) -> None:
    """Give SUBJECT your own PETNAME, e.g. "Grace (rue des Lilas)" (it never leaves this node)."""
    answer = call(place_of(ctx), "POST", "/v1/petnames", json={"subject": subject, "name": petname})
    view = PetnameView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("{who} is now {petname} for you", who=view.identity, petname=view.petname))


@click.command()
@_JSON
@click.pass_context
def names(ctx: click.Context, as_json: bool) -> None:
    """Your petnames."""
    answer = call(place_of(ctx), "GET", "/v1/petnames")
    views = [PetnameView.model_validate(v) for v in answer.body]
    if as_json:
        emit_json(views)
    elif not views:
        console.print(line("you have given no petnames yet (trustnode name tn_… NAME)"))
    else:
        console.print(render.petnames_table(views))


@click.command()
@click.argument("subject")
@_JSON
@click.pass_context
def unname(ctx: click.Context, subject: str, as_json: bool) -> None:
    """Forget your petname for SUBJECT (an identity or the petname itself)."""
    answer = call(place_of(ctx), "DELETE", f"/v1/petnames/{quote(subject, safe='')}")
    view = PetnameView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("{who} is no longer {petname} for you", who=view.identity,
                       petname=view.petname))  # fmt: skip


@click.command()
@click.option("--name", "display_name", required=True, help="The name you go by.")
@click.option("--about", help="One short line about you (optional; it travels signed).")
@_JSON
@click.pass_context
def profile(ctx: click.Context, display_name: str, about: str | None, as_json: bool) -> None:
    """Publish the name you go by (others see it marked as self-claimed: ~NAME)."""
    answer = call(place_of(ctx), "POST", "/v1/profile",
                  json={"name": display_name, "about": about})  # fmt: skip
    view = AttestationView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    where = "committed and sent to the peers" if answer.via_daemon else "committed locally"
    console.print(render.said_line("you go by {name}", where, view, name=display_name))


@click.command()
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@_JSON
@click.pass_context
def find(ctx: click.Context, text: str, limit: int, as_json: bool) -> None:
    """Members any of whose names reads like TEXT, most trusted by you first."""
    answer = call(place_of(ctx), "GET", "/v1/find", params={"text": text, "limit": limit})
    views = [FoundView.model_validate(v) for v in answer.body]
    if as_json:
        emit_json(views)
    elif not views:
        console.print(line("nobody you know goes by a name like {text}", text=text))
    else:
        console.print(render.found_table(views))


@click.command()
@click.argument("subject")
@_JSON
@click.pass_context
def whois(ctx: click.Context, subject: str, as_json: bool) -> None:
    """How you name SUBJECT, where that name comes from, and any impostor warning."""
    answer = call(place_of(ctx), "GET", f"/v1/names/{quote(subject, safe='')}")
    view = NameView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    for text in render.name_lines(subject, view):
        console.print(text)
