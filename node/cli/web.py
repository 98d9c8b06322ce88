"""`trustnode open`: the web app in the browser, logged in by a one-time link."""

from __future__ import annotations

import webbrowser

import click
import httpx

from node.api.access import api_url, read_token
from node.cli.client import _daemon_address, _via_daemon, load
from node.cli.common import EXIT_UNAVAILABLE, fail, place_of
from node.errors import ConfigError, StoreError

__all__ = ["open_"]


@click.command("open")
@click.option("--no-browser", is_flag=True, help="Only print the link (e.g. to open it elsewhere).")
@click.pass_context
def open_(ctx: click.Context, no_browser: bool) -> None:
    """Open the web app of the running daemon in your browser, logged in by a one-time link."""
    place = place_of(ctx)
    config = load(place)
    try:
        token = read_token(place.data_dir)
    except (StoreError, ConfigError) as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    listen = _daemon_address(config)
    if listen.startswith("unix:"):
        fail("the API listens on a Unix socket: a browser cannot reach it", EXIT_UNAVAILABLE)
    try:
        answer = _via_daemon(config, token, "POST", "/v1/login-links")
    except httpx.HTTPError:
        fail("no daemon answers: start it with `trustnode run`", EXIT_UNAVAILABLE)
    if answer.status != 201 or not isinstance(answer.body, dict):
        fail(f"the daemon refused a login link ({answer.status})", EXIT_UNAVAILABLE)
    url = api_url(listen) + str(answer.body["path"])
    click.echo(url)
    click.echo("  (works once, for five minutes)", err=True)
    if not no_browser:
        webbrowser.open(url)
