"""The `trustnode` command line (DESIGN §8).

One group; every command that works on a community takes the data directory
from `--data-dir`, `$TRUSTNODE_DATA_DIR` or `--community NAME` (under the
platform's user data directory). Exit codes are in `node.cli.common`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import trio

from node.cli import daemon, member, tools
from node.cli.common import console
from node.demo import run_demo
from node.demo_community import run_community_demo

__all__ = ["cli", "main"]


@click.group()
@click.version_option(package_name="trustnode")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The community's folder (default: per --community, under the user data dir).",
)
@click.option("--community", help="The community's local name (default: 'default').")
def cli(data_dir: Path | None, community: str | None) -> None:
    """trustnode: signed trust attestations, checked by anyone, owned by no one."""


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the nodes running, with their APIs.")
@click.option("--walkthrough", is_flag=True, help="Instead: the protocol step by step, offline.")
def demo(keep: bool, walkthrough: bool) -> None:
    """Start a small community of real nodes on this machine and show whom each trusts, and why."""
    if walkthrough:
        for line in run_demo(now_ms=time.time_ns() // 1_000_000):
            click.echo(line)
        return
    with tempfile.TemporaryDirectory(prefix="trustnode-demo-") as folder:
        try:
            trio.run(lambda: run_community_demo(console, folder=Path(folder), keep=keep))
        except KeyboardInterrupt:
            console.print("stopped")


tools.register(cli)
daemon.register(cli)
member.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli()
