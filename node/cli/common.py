"""What every `trustnode` command shares: exit codes, one-line errors, the data directory.

Exit codes (documented in the README):

    0  success
    1  a record or invite that does not verify, or a request the node refused
    2  bad input or usage (a bad identity, value, file or flag)
    3  the node is unavailable: no data directory or config, an unsafe file,
       the store cannot be used, or the daemon answered with a server error
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import BaseModel
from rich.console import Console

from node.cli.render import clean, short
from node.errors import ConfigError
from node.home.config import default_data_dir

__all__ = [
    "EXIT_INVALID",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "Place",
    "console",
    "emit_json",
    "fail",
    "place_of",
    "short",
]

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
# Piped output gets 100 columns (tables stay readable in logs and tests); a terminal, its own.
# No emoji codes, ever: `urn:x:y` is a URI, not ❌ (data goes through node.cli.render).
console = Console(
    highlight=False, soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 100
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one line on stderr and exit with `code`: never a traceback."""
    click.echo(f"trustnode: {clean(message)}", err=True)  # it may quote hostile input
    sys.exit(code)


def emit_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """Print a model (or a list of them) as indented JSON."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, Sequence):
        data = [v.model_dump(mode="json") for v in value]
    else:
        data = value
    click.echo(json.dumps(data, indent=2))


@dataclass(frozen=True, slots=True)
class Place:
    """Which community's data directory a command works on."""

    data_dir: Path
    community: str


def place_of(ctx: click.Context) -> Place:
    """The data directory from `--data-dir`, `$TRUSTNODE_DATA_DIR` or `--community`."""
    options = ctx.find_root().params
    given = options.get("data_dir") or os.environ.get("TRUSTNODE_DATA_DIR")
    community = options.get("community") or "default"
    try:
        data_dir = Path(given) if given else default_data_dir(community)
    except ConfigError as exc:
        fail(str(exc))
    return Place(data_dir=data_dir.expanduser(), community=community)
