"""Low-level tools that need no community: make a key, sign an attestation with a key
file, verify one, and `listen` (a bare handshake endpoint for transport checks).

They report refused input as one line on stderr with exit code 2 (usage or
input error) or 1 (a record that does not verify), never as a traceback.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import trio

from node.cli.common import EXIT_INVALID, fail
from node.cli.listen import run_listener
from node.errors import KeyFileError, StoreError
from node.home.keyfile import load_key, save_key
from node.service.attestation_json import attestation_to_json
from protocol.attestation import (
    AttestationBody,
    decode_attestation,
    sign_attestation,
)
from protocol.channel import Community
from protocol.errors import DecodeError, FieldError, LocalProtocolError, RemoteProtocolError
from protocol.identity import IdentityId, IdentityKey, decode_identity_text, encode_identity_text
from protocol.invite import (
    open_community_key,
)
from protocol.statement import (
    GENERAL_CONTEXT,
    Certify,
    Kind,
    Rate,
    Revoke,
    Statement,
    Subject,
    Thing,
    Trust,
    commit_claim_value,
)

if TYPE_CHECKING:
    from node.home.datadir import DataDir

_Command = TypeVar("_Command", bound=Callable[..., None])
_KEY_OPTION = click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The issuer's key file (from `trustnode keygen`).",
)


def _identity(text: str) -> IdentityId:
    try:
        return decode_identity_text(text)
    except DecodeError as exc:
        fail(f"{text!r:.80} is not an identity ({exc.reason.value})")


def _subject(text: str) -> Subject:
    """An identity (`tn_...`) or, for ratings, a thing's URI."""
    return _identity(text) if text.startswith("tn_") else Thing(text)


def _load(path: Path) -> IdentityKey:
    try:
        return load_key(path)
    except KeyFileError as exc:
        fail(str(exc))


@click.command()
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def keygen(out: Path) -> None:
    """Create a new identity key in OUT (mode 0600) and print its identity."""
    key = IdentityKey.generate()
    try:
        save_key(key, out)
    except KeyFileError as exc:
        fail(str(exc))
    click.echo(encode_identity_text(key.identity))


@click.command()
@_KEY_OPTION
def whoami(key_path: Path) -> None:
    """Print the identity of a key file."""
    click.echo(encode_identity_text(_load(key_path).identity))


@click.group()
def attest() -> None:
    """Sign an attestation and print it (hex envelope, or everything with --json)."""


def _times(issued_at_ms: int | None, expires_in_s: int | None) -> tuple[int, int | None]:
    issued = issued_at_ms if issued_at_ms is not None else time.time_ns() // 1_000_000
    return issued, None if expires_in_s is None else issued + expires_in_s * 1000


def _emit(
    key: IdentityKey,
    statement_factory: Callable[[], Statement],
    *,
    issued_at_ms: int | None,
    expires_in_s: int | None,
    as_json: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    issued, expires = _times(issued_at_ms, expires_in_s)
    try:
        statement: Statement = statement_factory()
        body = AttestationBody(
            issuer=key.identity, issued_at_ms=issued, expires_at_ms=expires, statement=statement
        )
    except FieldError as exc:
        fail(f"invalid attestation: {exc}")
    attestation = sign_attestation(body, key)
    if as_json:
        click.echo(json.dumps({**attestation_to_json(attestation), **(extra or {})}, indent=2))
    else:
        click.echo(attestation.data.hex())


def _common(function: _Command) -> _Command:
    for option in (
        _KEY_OPTION,
        click.option("--issued-at-ms", type=click.IntRange(min=0), help="Default: now."),
        click.option("--expires-in", "expires_in_s", type=click.IntRange(min=1), help="Seconds."),
        click.option("--json", "as_json", is_flag=True, help="Print every field as JSON."),
    ):
        function = option(function)
    return function


@attest.command("trust")
@click.argument("subject")
@click.option("--value", type=int, required=True, help="-100..100; negative = distrust.")
@click.option("--context", default=GENERAL_CONTEXT, show_default=True)
@_common
def attest_trust(subject: str, value: int, context: str, key_path: Path, **common: Any) -> None:
    """Vouch for (or, with a negative value, flag) SUBJECT, a tn_ identity."""
    key, who = _load(key_path), _identity(subject)
    _emit(key, lambda: Trust(subject=who, context=context, value=value), **common)


@attest.command("certify")
@click.argument("subject")
@click.option("--claim", required=True, help="e.g. resident:rue-des-lilas")
@click.option("--private-value", help="Commit to this value with a fresh salt (printed).")
@_common
def attest_certify(
    subject: str, claim: str, private_value: str | None, key_path: Path, **common: Any
) -> None:
    """Certify that you checked CLAIM about SUBJECT."""
    key, who = _load(key_path), _identity(subject)
    extra: dict[str, Any] = {}
    commitment = None
    if private_value is not None:
        salt = secrets.token_bytes(32)
        try:
            commitment = commit_claim_value(
                subject=who, claim=claim, value=private_value.encode(), salt=salt
            )
        except FieldError as exc:
            fail(f"invalid claim: {exc}")
        extra = {"opening": {"value": private_value, "salt": salt.hex()}}
        if not common["as_json"]:
            click.echo(f"salt (give it to the subject, keep it private): {salt.hex()}", err=True)
    _emit(
        key,
        lambda: Certify(subject=who, claim=claim, commitment=commitment),
        extra=extra,
        **common,
    )


@attest.command("rate")
@click.argument("subject")
@click.option("--value", type=int, required=True, help="-100..100")
@click.option("--context", default=GENERAL_CONTEXT, show_default=True)
@click.option("--reference", help="What exchange this rates.")
@_common
def attest_rate(
    subject: str, value: int, context: str, reference: str | None, key_path: Path, **common: Any
) -> None:
    """Rate an exchange with SUBJECT: a tn_ identity or a thing's URI."""
    key, what = _load(key_path), _subject(subject)
    statement = lambda: Rate(subject=what, context=context, value=value, reference=reference)  # noqa: E731
    _emit(key, statement, **common)


@attest.command("revoke")
@click.argument("target_kind", type=click.Choice(["trust", "certify", "rate"]))
@click.argument("subject")
@click.argument("scope")
@_common
def attest_revoke(
    target_kind: str, subject: str, scope: str, key_path: Path, **common: Any
) -> None:
    """Withdraw what you said of kind TARGET_KIND about SUBJECT in SCOPE (context or claim)."""
    key, what = _load(key_path), _subject(subject)
    kind = Kind[target_kind.upper()]
    _emit(key, lambda: Revoke(target_kind=kind, subject=what, scope=scope), **common)


@click.command()
@click.argument("envelope", default="-")
@click.option("--json", "as_json", is_flag=True, help="Print every field as JSON.")
def verify(envelope: str, as_json: bool) -> None:
    """Decode and verify an attestation given as hex (or `-` to read stdin)."""
    text = sys.stdin.read() if envelope == "-" else envelope
    try:
        data = bytes.fromhex(text.strip())
    except ValueError:
        fail("the envelope must be hexadecimal")
    try:
        attestation = decode_attestation(data)
    except RemoteProtocolError as exc:
        fail(f"invalid: {exc.reason.value}", EXIT_INVALID)
    if as_json:
        click.echo(json.dumps(attestation_to_json(attestation), indent=2))
    else:
        view = attestation_to_json(attestation)
        click.echo(f"valid {view['kind']} by {view['issuer']}, id {view['id']}")


@click.command()
@_KEY_OPTION
@click.option("--community-id", required=True, help="32 bytes, hex.")
@click.option("--community-key", "community_keys", multiple=True, help="32 bytes, hex; repeat.")
@click.option("--open", "is_open", is_flag=True, help="An open community (public key).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=7400, show_default=True)
def listen(
    key_path: Path,
    community_id: str,
    community_keys: tuple[str, ...],
    is_open: bool,
    host: str,
    port: int,
) -> None:
    """Accept secure connections and report peers (a minimal node, storing nothing)."""
    key = _load(key_path)
    try:
        identifier = bytes.fromhex(community_id)
        keys = [bytes.fromhex(k) for k in community_keys]
        if is_open:
            keys.append(open_community_key(identifier))
        community = Community(id=identifier, keys=tuple(keys))
    except (ValueError, LocalProtocolError) as exc:
        fail(f"invalid community: {exc}")

    def report(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        trio.run(
            functools.partial(
                run_listener,
                host=host,
                port=port,
                community=community,
                identity_key=key,
                report=report,
            )
        )
    except KeyboardInterrupt:
        report("stopped")
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")


_WHICH_KEY = (
    "Two keys, kept apart: the current key (default) signs as you, so its words let anyone "
    "be you until you rotate; keep them where you keep your passport. The next key (--next, "
    "made by `trustnode key commit`) is the only key that can rotate you, even after the "
    "current one is lost or stolen; keep its words offline (paper, a safe) and never on the "
    "machine that holds the current key."
)


@click.command(epilog=_WHICH_KEY)
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="A key file (default: this community's node key).")  # fmt: skip
@click.option("--next", "next_key", is_flag=True,
              help="The next-rotation key kept in the data directory (SPEC §17).")  # fmt: skip
@click.pass_context
def backup(ctx: click.Context, key_file: Path | None, next_key: bool) -> None:
    """Print a key as 24 backup words (write them on paper; anyone with them is you)."""
    from node.cli.common import place_of
    from node.home.backup import words_of
    from node.home.datadir import DataDir
    from node.home.nextkey import NEXT_KEY_FILE

    data = DataDir(place_of(ctx).data_dir)
    path = key_file if key_file is not None else data.key_path
    if next_key and key_file is None:
        path = data.path / NEXT_KEY_FILE
        if not path.exists():
            fail("no next key kept here: run `trustnode key commit` first")
    key = _load(path)
    words = words_of(key)
    label = "next key (it can rotate you: keep it offline)" if next_key else "identity"
    click.echo(f"{label}: {encode_identity_text(key.identity)}")
    for row in range(0, len(words), 6):
        click.echo("  ".join(f"{row + i + 1:2d}. {w}" for i, w in enumerate(words[row : row + 6])))


def _restore_next(data: DataDir, key: IdentityKey) -> None:
    """Keep `key` as the node's next key, sealed as key.json is (asking its passphrase)."""
    from node.home.keyfile import INTERACTIVE, sealing_of
    from node.home.nextkey import KeyFiles

    cost = sealing_of(data.key_path) if data.key_path.exists() else None
    passphrase = None
    if cost is not None:
        asked = click.prompt("the passphrase of key.json", hide_input=True, err=True)
        passphrase = str(asked).encode()
    KeyFiles(data, passphrase, cost or INTERACTIVE).restore_next(key)


@click.command(epilog=_WHICH_KEY)
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the key (--next without it: the next-key file).")  # fmt: skip
@click.option("--next", "next_key", is_flag=True,
              help="The words are the next-rotation key: this node's next key "
                   "(sealed as key.json is; its passphrase is asked for).")  # fmt: skip
@click.option("--words", "text", prompt="the 24 backup words", hide_input=True,
              help="The backup words (asked for, hidden, when not given).")  # fmt: skip
@click.pass_context
def restore(ctx: click.Context, out: Path | None, next_key: bool, text: str) -> None:
    """Write the key that 24 backup WORDS give to OUT (mode 0600) and print its identity."""
    from node.cli.common import place_of
    from node.home.backup import key_from_words
    from node.home.datadir import DataDir

    if out is None and not next_key:
        fail("say where: --out FILE (or --next for this node's next key)")
    try:
        key = key_from_words(text)
        if out is None:
            _restore_next(DataDir.open(place_of(ctx).data_dir), key)
        else:
            save_key(key, out)
    except (KeyFileError, StoreError) as exc:
        fail(str(exc))
    click.echo(encode_identity_text(key.identity))
    if next_key:
        click.echo("kept as the next key: `trustnode key` shows whether it is the one committed")
