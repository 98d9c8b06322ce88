"""The one door from data to the terminal: every human-readable view of the CLI.

Everything a view shows that came from a store, a peer, an import or a flag
(subjects, claims, contexts, URIs, references, reasons, names, paths) is data,
never markup: rich would read `urn:[/]` as a closing tag and crash, and
`urn:x:y` as the emoji code `:x:`. So data goes through `data()` (a `rich.text.Text`,
which rich never parses) or into `line()` templates as a field (never parsed), never
into an f-string that reaches `console.print`. Characters a terminal would act on
(escape sequences, other control characters, bidirectional overrides and other
invisible format characters) are shown as `\\x1b`, `\\u202e`... instead (`clean`).

Views are pure functions from the API's models to renderables, so that a
property test can push hostile strings through every one of them without a
node (tests/service/test_render.py). Our own words may use rich markup; only
`line()`'s template is read as markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from node.api.models import (
    AttestationView,
    ClaimView,
    ExplanationView,
    FoundView,
    ImportReportView,
    NameView,
    PeerView,
    PetnameView,
    RankingView,
    RatingView,
    ScoreView,
    StatusView,
)

__all__ = [
    "attestations_table",
    "claim_lines",
    "clean",
    "data",
    "explanation_lines",
    "found_table",
    "import_lines",
    "line",
    "name_lines",
    "named",
    "peers_table",
    "petnames_table",
    "ranking_table",
    "rating_lines",
    "said_line",
    "score_line",
    "short",
    "status_table",
]

_TOKEN = re.compile("\ue000[0-9]+\ue001")
_WHY_NOT = {
    "unknown": "nobody you can reach has said anything about them",
    "no_path": "no chain of vouches leads from you to them",
    "walled": "your own distrust blocks them (or every path to them)",
    "flagged": "flags from members you trust removed all of it",
}


def clean(text: str) -> str:
    """`text` with every character a terminal could act on made visible.

    Printable characters (and spaces) stay; control characters, bidirectional
    overrides, zero-width and other format characters, separators other than a
    space, surrogates and unassigned code points become `\\xNN`, `\\uNNNN` or
    `\\UNNNNNNNN`: what is shown is what is stored, with nothing hidden.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _visible(c) for c in text)


def _visible(character: str) -> str:
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def data(text: str, style: str = "") -> Text:
    """A piece of data as rich text: never parsed as markup or emoji codes."""
    return Text(clean(text), style=style, end="")


def short(identity_text: str) -> str:
    """`tn_` + 8 characters: a label for tables (never an identifier; a unique
    prefix, so it can be typed back). A thing's URI is shown whole."""
    if identity_text.startswith("tn_") and len(identity_text) > 12:
        return identity_text[:11] + "…"
    return identity_text


def named(identity_text: str, name: NameView | None = None) -> str:
    """An identity as people read it: the resolver's label with its mark (`Grace`,
    `"Grace" per alice`, `~Grace`), a warning sign when it may be an impostor,
    else the short id. Data: pass it to `line()` as a field, never as markup."""
    if name is None or name.source == "id":
        return short(identity_text)
    return f"{name.label} ⚠" if name.warnings else name.label


def _warnings(name: NameView | None, *, indent: str = "  ") -> list[Text]:
    if name is None:
        return []
    return [line(indent + "[yellow]warning[/]: {text}", text=w) for w in name.warnings]


def line(template: str, /, **fields: object) -> Text:
    """Our own markup `template`, with `{name}` fields filled in as data.

    Only the template is parsed as markup. String fields never are (not even
    escaped: rich's `escape` misses a backslash before a `[` that opens no tag,
    and the parser then eats the backslash): each stands in the template as a
    private-use token, and the parsed text is cut at the tokens and the cleaned
    data put in, with the styles the template gave that place. Other values
    (numbers) are formatted as given, e.g. `{score:.3f}`.
    """
    tokens: dict[str, str] = {}
    safe: dict[str, object] = {}
    for number, (name, value) in enumerate(fields.items()):
        if isinstance(value, str):
            token = f"\ue000{number}\ue001"
            tokens[token] = clean(value)
            safe[name] = token
        else:
            safe[name] = value
    marked = Text.from_markup(template.format(**safe), emoji=False)
    parts: list[Text] = []
    position = 0
    for found in _TOKEN.finditer(marked.plain):
        parts.append(marked[position : found.start()])
        piece = Text(tokens[found.group()])
        for span in marked[found.start() : found.end()].spans:
            piece.stylize(span.style)
        parts.append(piece)
        position = found.end()
    parts.append(marked[position:])
    return Text.assemble(*parts)


def said_line(template: str, where: str, view: AttestationView, /, **fields: object) -> Text:
    """`you vouch for tn_… in 'carpool' at 50: committed ...; id ...`.

    `template` is a `line` template over `fields`.
    """
    done = line(": {where}; id {id}…", where=where, id=view.id[:16])
    return Text.assemble(line(template, **fields), done)


def score_line(view: ScoreView) -> Text:
    """One score (and any impostor warning about its subject, on the next lines)."""
    scored = line(
        "{score:.3f}  trust in {who} for '{context}'",
        score=view.score,
        who=named(view.subject, view.name),
        context=view.context,
    )
    warnings = _warnings(view.name)
    return Text("\n").join([scored, *warnings]) if warnings else scored


def explanation_lines(view: ExplanationView) -> list[Text]:
    """A score with its evidence: contacts, routes, flags (and why one counts), walls."""
    names = view.names
    lines = [
        line(
            "[bold]{score:.3f}[/] trust in {who} for '{context}'",
            score=view.score,
            who=named(view.subject, names.get(view.subject)),
            context=view.context,
        ),
        *_warnings(names.get(view.subject)),
    ]
    if view.why_not is not None:
        reason = _WHY_NOT.get(view.why_not, "")
        lines.append(line("  why not: {code} ({reason})", code=view.why_not, reason=reason))
    if view.first_hops:
        lines.append(line("  through your contacts:"))
        lines += [line("    {via}  {share:.3f}", via=named(h.via, names.get(h.via)),
                       share=h.share) for h in view.first_hops]  # fmt: skip
    if view.paths:
        lines.append(line("  strongest routes (share of the reach):"))
        for path in view.paths:
            route = " -> ".join(named(n, names.get(n)) for n in path.route)
            lines.append(line("    {share:6.1%}  {route}", share=path.share, route=route))
    if view.flags:
        lines += _flag_lines(view)
    if view.wall > 0:
        lines.append(line("  your walls removed {wall:.3f} of the reach", wall=view.wall))
    return lines


def _flag_lines(view: ExplanationView) -> list[Text]:
    # A flag removes (flag weight x strength x the flagger's standing with us), where
    # the standing is our trust in the flagger not counting routes through the flagged
    # member (node.trust.walk.penalty): a flag that removes nothing has no standing.
    # Judged at the precision shown: a float crumb (1e-17) printed "-0.000" as if
    # the flag had counted.
    if round(view.flag_penalty, 3) > 0:
        lines = [line("  flags removed {penalty:.3f}:", penalty=view.flag_penalty)]
    else:
        lines = [line("  flags removed nothing: no flagger has any trust from you")]
    for flag in view.flags:
        if round(flag.removed, 3) > 0:
            lines.append(line("    {who}  -{removed:.3f}",
                              who=named(flag.flagger, view.names.get(flag.flagger)),
                              removed=flag.removed))  # fmt: skip
        else:
            lines.append(line(
                "    {who}  counts for nothing: you give them no trust (none that does not "
                "pass through the member they flag)",
                who=named(flag.flagger, view.names.get(flag.flagger)),
            ))  # fmt: skip
    return lines


def claim_reason(view: ClaimView) -> str:
    """Why a claim is, or is not, accepted, in words."""
    if view.accepted and view.own_certification:
        return "you certified it yourself"
    if view.accepted:
        return (
            f"{view.independent} independent chains of trust lead to its certifiers "
            f"({view.required} required)"
        )
    if not view.certifiers:
        return "nobody has certified it"
    certifiers = _counted(len(view.certifiers), "certifier")
    chains = _counted(view.independent, "independent chain")
    return f"{certifiers}, reached by only {chains} of trust from you ({view.required} required)"


def _counted(n: int, noun: str) -> str:
    """`1 certifier`, `2 certifiers`: the trial read "1 certifiers ... 1 independent chains"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def claim_lines(view: ClaimView) -> list[Text]:
    """A claim decision, with why, and the chains that counted."""
    verdict = "[green]accepted[/]" if view.accepted else "[red]not accepted[/]"
    names = view.names
    lines = [
        line(
            "'{claim}' about {who}: " + verdict + ": {reason}",
            claim=view.claim,
            who=named(view.subject, names.get(view.subject)),
            reason=claim_reason(view),
        ),
        *_warnings(names.get(view.subject)),
    ]
    lines += [
        line("    {route}", route=" -> ".join(named(n, names.get(n)) for n in p))
        for p in view.paths
    ]
    return lines


def rating_value(view: RatingView) -> str:
    """The rating as the JSON has it (-1..1), or why there is none."""
    return "no rating counted" if view.value is None else f"{view.value:+.2f}"


def rating_lines(views: Sequence[RatingView], *, subject: str) -> list[Text]:
    """One line per context a subject was rated in (the same numbers as `--json`)."""
    if not views:
        return [line("{who}: nobody has rated it", who=short(subject))]
    return [
        line(
            "{who} in '{context}': {value} (-1..1; {counted} counted, {ignored} ignored)",
            who=named(view.subject, view.names.get(view.subject)),
            context=view.context,
            value=rating_value(view),
            counted=len(view.counted),
            ignored=view.ignored,
        )
        for view in views
    ]


def ranking_table(view: RankingView) -> Table:
    """The members we trust most."""
    table = Table("member", "name", "score", title=data(f"trust for '{view.context}'"))
    for member in view.members:
        shown = "" if member.name is None else named(member.identity, member.name)
        table.add_row(data(member.identity), data(shown), f"{member.score:.3f}")
    return table


def petnames_table(views: Sequence[PetnameView]) -> Table:
    """Our petnames (mine: they never leave this node)."""
    table = Table("petname", "identity")
    for view in views:
        table.add_row(data(view.petname), data(view.identity))
    return table


def found_table(views: Sequence[FoundView]) -> Table:
    """Members found by name, most trusted first, with any impostor warning."""
    table = Table("name", "identity", "score", "warning")
    for view in views:
        table.add_row(
            data(named(view.identity, view.name)),
            data(short(view.identity)),
            f"{view.score:.3f}",
            data("; ".join(view.name.warnings), "yellow"),
        )
    return table


def name_lines(identity_text: str, view: NameView) -> list[Text]:
    """How we name one identity, where the name comes from, and any warning."""
    source = {
        "petname": "your petname",
        "contacts": "the name your contacts give (" + ", ".join(view.given_by) + ")",
        "self": "the name they chose themselves (self-claimed, unchecked)",
        "id": "no name known",
    }[view.source]
    lines = [line("{label}  {who}: {source}", label=view.label, who=identity_text, source=source)]
    return lines + _warnings(view)


def attestations_table(views: Sequence[AttestationView]) -> Table:
    """Current attestations, one a row."""
    table = Table("kind", "issuer", "subject", "context / claim", "value")
    for v in views:
        # A profile's name is self-claimed: shown with its mark, as everywhere.
        claimed = f"~{v.name}" if v.kind == "profile" and v.name else ""
        scope = v.context or v.claim or v.scope or claimed
        value = "" if v.value is None else str(v.value)
        table.add_row(
            data(v.kind),
            data(named(v.issuer, v.issuer_name)),
            data(named(v.subject, v.subject_name)),
            data(scope),
            data(value),
        )
    return table


def import_lines(report: ImportReportView, *, start_line: int = 2) -> list[Text]:
    """What became of an import (at most 20 refusals listed)."""
    lines = [
        line(
            "{new:,} new, {duplicate:,} already held, {superseded:,} superseded, "
            "{rejected:,} rejected",
            new=report.new,
            duplicate=report.duplicate,
            superseded=report.superseded,
            rejected=len(report.rejected),
        )
    ]
    lines += [
        line("  line {n}: {reason}", n=r.index + start_line, reason=r.reason)
        for r in report.rejected[:20]
    ]
    return lines


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f} s ago"


def status_table(view: StatusView, *, running: bool) -> Table:
    """The node's health, one row a fact."""
    table = Table(show_header=False, box=None)
    rows: list[tuple[str, Text]] = [
        ("identity", data(view.identity)),
        ("community", data(view.community_id)),
        ("daemon", data("running" if running else "not running (read from the store)")),
        ("peers", data(f"{view.peers} connected, {view.passive_addresses} addresses in reserve")),
        ("listening", data(view.listen or "-")),
        ("advertised", data(", ".join(view.advertised) or "-")),
        ("attestations", data(f"{view.attestations:,} stored, {view.heads:,} current")),
        ("store", data(f"{view.store_bytes / 1e6:.2f} MB")),
        ("last sync", data(_age(view.last_sync_age_s))),
        ("refused", data(f"{view.protocol_errors} protocol errors, "
                         f"{view.relay_refused} over quota")),
    ]  # fmt: skip
    if view.reachability is not None:
        rows.insert(6, ("reachability", data(view.reachability)))
    if view.invite_refusals is not None:  # an inviter learns why a neighbour could not join
        rows.append(("invites", data(view.invite_refusals, "yellow")))
    if view.store_errors:
        refused = f"{view.store_errors} writes refused (disk full?)"
        rows.append(("store errors", data(refused, "red")))
    for name, value in rows:
        table.add_row(Text(name, style="bold"), value)
    return table


def peers_table(views: Sequence[PeerView]) -> RenderableType:
    """The connected peers."""
    table = Table("peer", "name", "direction", "push", "last sync")
    for view in views:
        direction = "outbound" if view.dialled else "inbound"
        shown = "" if view.name is None else named(view.identity, view.name)
        table.add_row(data(short(view.identity)), data(shown), direction,
                      "eager" if view.eager else "lazy", _age(view.last_sync_age_s))  # fmt: skip
    return table
