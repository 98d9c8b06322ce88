"""`trustnode demo`: the README's first command."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import trio

from node.cli.common import console
from node.demo.community import run_community_demo
from node.demo.walkthrough import run_demo

__all__ = ["demo"]


@click.command()
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
