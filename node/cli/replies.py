"""The body most `trustnode` commands share: one API request, its answer read as a
view, printed as JSON (`--json`) or as lines.

`node.cli.client.call` already finds the node (the daemon, or the store opened
in process) and turns every refusal into one line and an exit code; what was left
to each command was reading the body and choosing between the two outputs, the
same six lines in each. They live here once, so a command says only what it asks
and how its answer reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from node.cli.client import call
from node.cli.common import emit_json, place_of

__all__ = ["JSON_OPTION", "answer_with"]

V = TypeVar("V", bound="BaseModel | Sequence[BaseModel]")

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def answer_with(
    ctx: click.Context, method: str, path: str, *, read: Callable[[Any], V],
    show: Callable[[V], None], as_json: bool, **request: Any,
) -> None:  # fmt: skip
    """Send `method path` (with `request`: `json=`, `params=`) to this command's node,
    read the answer's body with `read`, and print it: as JSON, or with `show`.

    A refusal never returns: `call` has printed it and exited (node.cli.common).
    """
    view = read(call(place_of(ctx), method, path, **request).body)
    if as_json:
        emit_json(view)
    else:
        show(view)
