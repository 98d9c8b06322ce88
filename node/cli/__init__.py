"""The `trustnode` command line (DESIGN §8).

One group; every command that works on a community takes the data directory
from `--data-dir`, `$TRUSTNODE_DATA_DIR` or `--community NAME` (under the
platform's user data directory). Exit codes are in `node.cli.common`.

Commands load lazily: `trustnode score` asks the daemon without importing the
web framework or the trust engine, so it answers in a fraction of a second.
The one-line summaries below are what `--help` lists; a test keeps them equal
to each command's docstring.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("node.cli.daemon:init", "Create this community's data directory: config, key, API token, store."),
    "join": ("node.cli.daemon:join", "Join a community with an invite CODE: a data directory that bootstraps from the inviter."),
    "run": ("node.cli.daemon:run", "Run the node in the foreground until SIGINT or SIGTERM (a clean stop)."),
    "invite": ("node.cli.daemon:invite", "Print an invite code to this community that bootstraps from this node."),
    "connect": ("node.cli.daemon:connect", "Ask the running daemon to keep a connection to ADDRESS (host:port)."),
    "status": ("node.cli.daemon:status", "The node's identity, peers, store size and sync lag."),
    "peers": ("node.cli.daemon:peers", "The connected peers."),
    "trust": ("node.cli.member:trust", "Vouch for SUBJECT (a tn_ identity) in a context."),
    "distrust": ("node.cli.member:distrust", "Flag SUBJECT: you would not rely on them in this context."),
    "certify": ("node.cli.member:certify", "Certify that you checked CLAIM (e.g. resident:rue-des-lilas) about SUBJECT."),
    "rate": ("node.cli.member:rate", "Rate an exchange with SUBJECT (a tn_ identity or a thing's URI), VALUE -100..100."),
    "revoke": ("node.cli.member:revoke", "Withdraw your KIND statement about SUBJECT in SCOPE (a context or a claim)."),
    "score": ("node.cli.member:score", "How far you should trust SUBJECT in a context (0..1), from your point of view."),
    "explain": ("node.cli.member:explain", "Why you trust SUBJECT as much as you do: contacts, routes, flags, walls."),
    "claims": ("node.cli.member:claims", "Whether CLAIM about SUBJECT is certified by enough independent trusted members."),
    "rating": ("node.cli.member:rating", "The trust-weighted rating of SUBJECT (an identity or a thing's URI)."),
    "ranking": ("node.cli.member:ranking", "The members you trust most in a context."),
    "name": ("node.cli.names:name", 'Give SUBJECT your own PETNAME, e.g. "Grace (rue des Lilas)" (it never leaves this node).'),
    "names": ("node.cli.names:names", "Your petnames."),
    "unname": ("node.cli.names:unname", "Forget your petname for SUBJECT (an identity or the petname itself)."),
    "profile": ("node.cli.names:profile", "Publish the name you go by (others see it marked as self-claimed: ~NAME)."),
    "find": ("node.cli.names:find", "Members any of whose names reads like TEXT, most trusted by you first."),
    "whois": ("node.cli.names:whois", "How you name SUBJECT, where that name comes from, and any impostor warning."),
    "attestations": ("node.cli.member:attestations", "Current attestations by an issuer or about a subject."),
    "export": ("node.cli.member:export_", "Write every stored attestation to a portable export file."),
    "import": ("node.cli.member:import_", "Verify and store the attestations of an export FILE (each one checked)."),
    "device": ("node.cli.devices:device", "One identity on several machines: pair, approve, list and revoke device keys."),
    "key": ("node.cli.keys:key", "This node's key: show it, commit to the next key, rotate to it."),
    "custodians": ("node.cli.recovery:custodians", "List this identity's custodians (or designate them: `custodians set K NAME…`)."),
    "recover": ("node.cli.recovery:recover", "Recovery of a lost key by custodians: sign, veto, status."),
    "simulate": ("node.cli.simulate:simulate", "Simulate a community of real nodes (seeded, virtual time): a scenario or a sweep."),
    "open": ("node.cli.web:open_", "Open the web app of the running daemon in your browser, logged in by a one-time link."),
    "demo": ("node.cli.demo:demo", "Start a small community of real nodes on this machine and show whom each trusts, and why."),
    "keygen": ("node.cli.tools:keygen", "Create a new identity key in OUT (mode 0600) and print its identity."),
    "backup": ("node.cli.tools:backup", "Print a key as 24 backup words (write them on paper; anyone with them is you)."),
    "restore": ("node.cli.tools:restore", "Write the key that 24 backup WORDS give to OUT (mode 0600) and print its identity."),
    "whoami": ("node.cli.tools:whoami", "Print the identity of a key file."),
    "attest": ("node.cli.tools:attest", "Sign an attestation and print it (hex envelope, or everything with --json)."),
    "verify": ("node.cli.tools:verify", "Decode and verify an attestation given as hex (or `-` to read stdin)."),
    "listen": ("node.cli.tools:listen", "Accept secure connections and report peers (a minimal node, storing nothing)."),
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported when used (see module doc)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, _, attribute = entry[0].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, summary) for name, (_, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="trustnode")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The community's folder (default: per --community, under the user data dir).",
)
@click.option("--community", help="The community's local name (default: 'default').")
def cli(data_dir: Path | None, community: str | None) -> None:  # fmt: skip
    """trustnode: signed trust attestations, checked by anyone, owned by no one."""


def main() -> None:
    """Console-script entry point."""
    cli()
