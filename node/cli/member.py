"""What a member says and asks: trust, distrust, certify, rate, revoke; score, explain,
claims, rating, ranking, attestations; export and import."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.progress import track

from node.api.limits import MAX_IMPORT_BODY_BYTES
from node.api.models import (
    MAX_IMPORT,
    AttestationView,
    CertificateView,
    ClaimView,
    ExplanationView,
    ImportReportView,
    RankingView,
    RatingView,
    RejectedView,
    ScoreView,
)
from node.cli import render, render_keys
from node.cli.client import Answer, call, load
from node.cli.common import EXIT_INVALID, console, emit_json, fail, place_of
from node.cli.render import line, short
from protocol.errors import DecodeError
from protocol.export import decode_export
from protocol.statement import GENERAL_CONTEXT

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_CONTEXT = click.option("--context", default=GENERAL_CONTEXT, show_default=True,
                        help="What the trust is for, e.g. carpool.")  # fmt: skip
_EXPIRES = click.option("--expires-in", "expires_in_s", type=click.IntRange(min=1),
                        help="Seconds until it lapses.")  # fmt: skip
MAX_IMPORT_FILE_BYTES = 256 * 1024 * 1024


def _where(answer: Answer) -> str:
    if answer.via_daemon:
        return "committed and sent to the peers"
    return "committed locally (the daemon is not running: it shares it at its next start)"


def _said(answer: Answer, as_json: bool, what: str, **fields: object) -> None:
    """Print what was signed: `what` is a `render.line` template over `fields`."""
    view = AttestationView.model_validate(answer.body)
    if as_json:
        emit_json(view)
    else:
        # `who` as the node resolved and names it (the member may have typed a prefix).
        fields = {**fields, "who": render.named(view.subject, view.subject_name)}
        console.print(render.said_line(what, _where(answer), view, **fields))


@click.command()
@click.argument("subject")
@click.option("--value", type=click.IntRange(1, 100), default=50, show_default=True,
              help="How strongly (1..100).")  # fmt: skip
@_CONTEXT
@_EXPIRES
@click.option("--name", "known_as", help="What you know them by (travels with the vouch).")
@_JSON
@click.pass_context
def trust(ctx: click.Context, subject: str, value: int, context: str,
          expires_in_s: int | None, known_as: str | None, as_json: bool) -> None:  # fmt: skip
    """Vouch for SUBJECT (a tn_ identity) in a context."""
    body = {"subject": subject, "value": value, "context": context, "expires_in_s": expires_in_s,
            "name": known_as}  # fmt: skip
    answer = call(place_of(ctx), "POST", "/v1/trust", json=body)
    _said(answer, as_json, "you vouch for {who} in '{context}' at {value}",
          who=short(subject), context=context, value=value)  # fmt: skip


@click.command()
@click.argument("subject")
@click.option("--value", type=click.IntRange(1, 100), default=100, show_default=True,
              help="How strongly (1..100).")  # fmt: skip
@_CONTEXT
@_EXPIRES
@_JSON
@click.pass_context
def distrust(ctx: click.Context, subject: str, value: int, context: str,
             expires_in_s: int | None, as_json: bool) -> None:  # fmt: skip
    """Flag SUBJECT: you would not rely on them in this context."""
    body = {"subject": subject, "value": value, "context": context, "expires_in_s": expires_in_s}
    answer = call(place_of(ctx), "POST", "/v1/distrust", json=body)
    _said(answer, as_json, "you flag {who} in '{context}' at {value}",
          who=short(subject), context=context, value=value)  # fmt: skip


@click.command()
@click.argument("subject")
@click.argument("claim")
@click.option("--private-value", help="Commit to this value; only a salted hash travels.")
@_EXPIRES
@_JSON
@click.pass_context
def certify(ctx: click.Context, subject: str, claim: str, private_value: str | None,
            expires_in_s: int | None, as_json: bool) -> None:  # fmt: skip
    """Certify that you checked CLAIM (e.g. resident:rue-des-lilas) about SUBJECT."""
    body = {"subject": subject, "claim": claim, "private_value": private_value,
            "expires_in_s": expires_in_s}  # fmt: skip
    answer = call(place_of(ctx), "POST", "/v1/certify", json=body)
    view = CertificateView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    console.print(line("you certify '{claim}' about {who}: {where}", claim=claim,
                       who=render.named(view.attestation.subject, view.attestation.subject_name),
                       where=_where(answer)))  # fmt: skip
    if view.salt:
        console.print(line("salt (give it to the subject only; it opens the commitment): {salt}",
                           salt=view.salt))  # fmt: skip


# click would read `-40` as the option `-4`: unknown "options" are kept as arguments,
# so a negative VALUE arrives as itself (and a mistyped flag is still refused, as an
# extra argument or a bad value).
@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("subject")
@click.argument("value", type=click.IntRange(-100, 100))
@_CONTEXT
@click.option("--reference", help="Which exchange this rates.")
@_EXPIRES
@_JSON
@click.pass_context
def rate(ctx: click.Context, subject: str, value: int, context: str, reference: str | None,
         expires_in_s: int | None, as_json: bool) -> None:  # fmt: skip
    """Rate an exchange with SUBJECT (a tn_ identity or a thing's URI), VALUE -100..100."""
    body = {"subject": subject, "value": value, "context": context, "reference": reference,
            "expires_in_s": expires_in_s}  # fmt: skip
    answer = call(place_of(ctx), "POST", "/v1/rate", json=body)
    _said(answer, as_json, "you rate {who} {value:+d} in '{context}'",
          who=short(subject), value=value, context=context)  # fmt: skip


@click.command()
@click.argument("kind", type=click.Choice(["trust", "certify", "rate"]))
@click.argument("subject")
@click.argument("scope")
@_JSON
@click.pass_context
def revoke(ctx: click.Context, kind: str, subject: str, scope: str, as_json: bool) -> None:
    """Withdraw your KIND statement about SUBJECT in SCOPE (a context or a claim)."""
    body = {"kind": kind, "subject": subject, "scope": scope}
    answer = call(place_of(ctx), "POST", "/v1/revoke", json=body)
    _said(answer, as_json, "you withdraw your {kind} of {who} in '{scope}'",
          kind=kind, who=short(subject), scope=scope)  # fmt: skip


@click.command()
@click.argument("subject")
@_CONTEXT
@_JSON
@click.pass_context
def score(ctx: click.Context, subject: str, context: str, as_json: bool) -> None:
    """How far you should trust SUBJECT in a context (0..1), from your point of view."""
    answer = call(
        place_of(ctx), "GET", f"/v1/score/{quote(subject, safe='')}", params={"context": context}
    )
    view = ScoreView.model_validate(answer.body)
    if as_json:
        emit_json(view)
    else:
        console.print(render.score_line(view))


@click.command()
@click.argument("subject")
@_CONTEXT
@click.option("--paths", type=click.IntRange(0, 50), default=5, show_default=True)
@_JSON
@click.pass_context
def explain(ctx: click.Context, subject: str, context: str, paths: int, as_json: bool) -> None:
    """Why you trust SUBJECT as much as you do: contacts, routes, flags, walls."""
    params = {"context": context, "paths": paths}
    answer = call(place_of(ctx), "GET", f"/v1/explain/{quote(subject, safe='')}", params=params)
    view = ExplanationView.model_validate(answer.body)
    if as_json:
        emit_json(view)
        return
    for text in [*render.explanation_lines(view), *render_keys.key_lines(view)]:
        console.print(text)


@click.command()
@click.argument("subject")
@click.argument("claim")
@click.option("--independent", type=click.IntRange(1, 10), default=2, show_default=True,
              help="Disjoint chains of trust required.")  # fmt: skip
@_JSON
@click.pass_context
def claims(ctx: click.Context, subject: str, claim: str, independent: int, as_json: bool) -> None:
    """Whether CLAIM about SUBJECT is certified by enough independent trusted members.

    Says why (your own certification, or how many independent chains reach its
    certifiers); exits 1 when the claim is not accepted.
    """
    params: dict[str, Any] = {"claim": claim, "independent": independent}
    answer = call(place_of(ctx), "GET", f"/v1/claims/{quote(subject, safe='')}", params=params)
    view = ClaimView.model_validate(answer.body)
    if as_json:
        emit_json(view)
    else:
        for text in render.claim_lines(view):
            console.print(text)
    if not view.accepted:
        sys.exit(EXIT_INVALID)  # scripts test `trustnode claims ...` like `grep -q`


@click.command()
@click.argument("subject")
@click.option("--context", help="Only this context (default: every context it was rated in).")
@_JSON
@click.pass_context
def rating(ctx: click.Context, subject: str, context: str | None, as_json: bool) -> None:
    """The trust-weighted rating of SUBJECT (an identity or a thing's URI).

    Values are on the JSON's scale, -1..1. Without --context, one line (with
    --json, one object of a list) for each context it was rated in.
    """
    place = place_of(ctx)
    if context is None:
        answer = call(place, "GET", "/v1/ratings", params={"subject": subject})
        views = [RatingView.model_validate(v) for v in answer.body]
    else:
        params = {"subject": subject, "context": context}
        views = [RatingView.model_validate(call(place, "GET", "/v1/rating", params=params).body)]
    if as_json:
        emit_json(views if context is None else views[0])
        return
    for text in render.rating_lines(views, subject=subject):
        console.print(text)


@click.command()
@_CONTEXT
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@_JSON
@click.pass_context
def ranking(ctx: click.Context, context: str, limit: int, as_json: bool) -> None:
    """The members you trust most in a context."""
    params: dict[str, Any] = {"context": context, "limit": limit}
    view = RankingView.model_validate(call(place_of(ctx), "GET", "/v1/ranking", params=params).body)
    if as_json:
        emit_json(view)
        return
    console.print(render.ranking_table(view))


@click.command()
@click.option("--issuer", help="What this identity currently says.")
@click.option("--subject", help="What is currently said about this identity or thing.")
@_JSON
@click.pass_context
def attestations(
    ctx: click.Context, issuer: str | None, subject: str | None, as_json: bool
) -> None:
    """Current attestations by an issuer or about a subject."""
    params = {k: v for k, v in (("issuer", issuer), ("subject", subject)) if v is not None}
    answer = call(place_of(ctx), "GET", "/v1/attestations", params=params)
    views = [AttestationView.model_validate(a) for a in answer.body]
    if as_json:
        emit_json(views)
        return
    console.print(render.attestations_table(views))


@click.command("export")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Default: stdout.")
@click.pass_context
def export_(ctx: click.Context, out: Path | None) -> None:
    """Write every stored attestation to a portable export file."""
    answer = call(place_of(ctx), "GET", "/v1/export")
    text = str(answer.body)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="ascii")
        console.print(line("[dim]{n:,} attestations written to {out}[/]",
                           n=text.count(chr(10)) - 1, out=str(out)))  # fmt: skip


def _import_chunks(envelopes: Sequence[bytes]) -> list[tuple[int, list[str]]]:
    """(index of the first, hex envelopes) per request: at most `MAX_IMPORT` envelopes
    and a body under the API's limit (`MAX_IMPORT_BODY_BYTES`), whichever comes first."""
    budget = MAX_IMPORT_BODY_BYTES - 1024  # room for the JSON around the list
    chunks: list[tuple[int, list[str]]] = []
    size = budget + 1
    for index, envelope in enumerate(envelopes):
        text = envelope.hex()
        if size + len(text) + 4 > budget or len(chunks[-1][1]) >= MAX_IMPORT:
            chunks.append((index, []))
            size = 0
        chunks[-1][1].append(text)
        size += len(text) + 4  # quotes, comma, space
    return chunks


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_JSON
@click.pass_context
def import_(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Verify and store the attestations of an export FILE (each one checked)."""
    place = place_of(ctx)
    config = load(place)
    with file.open("rb") as handle:
        data = handle.read(MAX_IMPORT_FILE_BYTES + 1)
    if len(data) > MAX_IMPORT_FILE_BYTES:
        fail(f"{file} is larger than {MAX_IMPORT_FILE_BYTES // 2**20} MiB")
    try:
        exported = decode_export(data)
    except DecodeError as exc:
        fail(f"{file}: {exc}", EXIT_INVALID)
    if exported.community_id != config.community_id:
        fail(f"{file} comes from another community ({exported.community_id.hex()[:16]}…)")
    totals = {"new": 0, "duplicate": 0, "superseded": 0}
    rejected: list[dict[str, Any]] = []
    chunks = _import_chunks(exported.envelopes)
    shown = len(chunks) > 1 and not as_json
    for start, chunk in (
        track(chunks, description="importing", console=console) if shown else chunks
    ):
        answer = call(place, "POST", "/v1/import", json={"envelopes": chunk})
        report = ImportReportView.model_validate(answer.body)
        for name in totals:
            totals[name] += getattr(report, name)
        rejected += [{"index": r.index + start, "reason": r.reason} for r in report.rejected]
    if as_json:
        emit_json({**totals, "rejected": rejected})
        return
    report = ImportReportView(
        **totals, rejected=[RejectedView(index=r["index"], reason=r["reason"]) for r in rejected]
    )
    for text in render.import_lines(report):
        console.print(text)
