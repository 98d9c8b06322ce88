"""`trustnode custodians …` and `trustnode recover …`: recovery by custodians (SPEC §18).

`trustnode custodians` lists one's custodians (from the replicated store, so
any node of the community can show them: people forget whom they chose);
`custodians set K NAME…` designates k of them. A custodian whose friend lost
their key runs `trustnode recover sign OLD NEW`; any key of the member can
`trustnode recover veto NEW` within the waiting period; `recover status
SUBJECT` shows where a recovery stands.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from node.api.models import AttestationView
from node.api.recovery import CustodiansView
from node.cli.common import console
from node.cli.render import line
from node.cli.replies import JSON_OPTION, answer_with


def _show(view: CustodiansView) -> None:
    console.print(line("member {member}", member=view.member))
    if view.in_force is None:
        console.print("  no custodians in force (designate some: trustnode custodians set K NAME…)")
    else:
        d = view.in_force
        hours = str(d.wait_ms // 3_600_000)
        console.print(line("  in force: any {k} of {n}; a recovery waits {h} h for your veto",
                           k=str(d.k), n=str(len(d.custodians)), h=hours))  # fmt: skip
        for c in d.custodians:
            console.print(line("    custodian {key}", key=c))
    for d in view.designations:
        if view.in_force is not None and d.digest == view.in_force.digest:
            continue
        state = "vetoed" if d.vetoes else (
            "waiting" if d.lock_ends_ms > view.now_ms else "superseded")  # fmt: skip
        console.print(line("  designation {digest}: {k} of {n}, {state} (lock ends {end})",
                           digest=d.digest[:16], k=str(d.k), n=str(len(d.custodians)),
                           state=state, end=str(d.lock_ends_ms)))  # fmt: skip
    for r in view.recoveries:
        if r.counts:
            state = "in effect"
        elif r.vetoes:
            state = "vetoed by " + ", ".join(v.key for v in r.vetoes)
        elif r.effective_at_ms is not None:
            state = f"waiting until {r.effective_at_ms}"
        else:
            state = f"{len(r.custodians)} of {r.k or '?'} custodians"
        console.print(line("  recovery {old} -> {new}: {state}", old=r.old, new=r.new, state=state))


@click.group(invoke_without_command=True)
@JSON_OPTION
@click.pass_context
def custodians(ctx: click.Context, as_json: bool) -> None:
    """List this identity's custodians (or designate them: `custodians set K NAME…`)."""
    if ctx.invoked_subcommand is None:
        answer_with(ctx, "GET", "/v1/custodians", read=CustodiansView.model_validate, show=_show,
                    as_json=as_json)  # fmt: skip


def _hours(text: str) -> int:
    """`96h`, `4d` or `96` (hours) as whole hours."""
    unit = 24 if text.endswith("d") else 1
    digits = text[:-1] if text[-1:] in ("h", "d") else text
    if not digits.isascii() or not digits.isdigit():
        raise click.BadParameter(f"{text!r}: say hours or days, e.g. 96h or 4d")
    return int(digits) * unit


@custodians.command("set")
@click.argument("k", type=int)
@click.argument("names", nargs=-1, required=True)
@click.option("--wait", "wait", default=None, metavar="96h|4d",
              help="How long a recovery waits for your veto, and a later change of custodians"
              " is locked: 24h to 30d (default 72h). Written into the designation, so every"
              " node waits the same.")  # fmt: skip
@JSON_OPTION
@click.pass_context
def set_(ctx: click.Context, k: int, names: tuple[str, ...], wait: str | None,
         as_json: bool) -> None:  # fmt: skip
    """Designate NAMES (members you vouch for) as custodians, any K of whom can recover you.

    A change takes effect after the time lock of the designation in force (72 h
    unless it set another); until then the old custodians stay in force, and
    any key of yours can veto it.
    """
    body: dict[str, object] = {"k": k, "custodians": list(names)}
    if wait is not None:
        body["wait_hours"] = _hours(wait)
    answer_with(
        ctx, "POST", "/v1/custodians", json=body,
        read=lambda body: [AttestationView.model_validate(a) for a in body], as_json=as_json,
        show=lambda made: console.print(line(
            "designated {n} custodians; any {k} can recover you", n=str(len(made)), k=str(k))),
    )  # fmt: skip


@click.group()
def recover() -> None:
    """Recovery of a lost key by custodians: sign, veto, status."""


@recover.command("sign")
@click.argument("old")
@click.argument("new")
@JSON_OPTION
@click.pass_context
def sign(ctx: click.Context, old: str, new: str, as_json: bool) -> None:
    """As a custodian: say NEW is really the member whose key OLD was lost.

    Check it in person or over a channel you trust first: k of these take
    over the member's standing after the waiting period.
    """
    answer_with(
        ctx, "POST", "/v1/recoveries", json={"old": old, "new": new},
        read=AttestationView.model_validate, as_json=as_json,
        show=lambda view: console.print(
            line("you vouched that {new} recovers {old}", new=new, old=view.subject)),
    )  # fmt: skip


@recover.command("veto")
@click.argument("target")
@JSON_OPTION
@click.pass_context
def veto(ctx: click.Context, target: str, as_json: bool) -> None:
    """Veto the recovery to key TARGET, or the designation whose digest is TARGET (hex)."""
    is_digest = len(target) == 64 and all(c in "0123456789abcdef" for c in target)
    body = {"designation": target} if is_digest else {"recovery": target}
    answer_with(
        ctx, "POST", "/v1/vetoes", json=body, read=AttestationView.model_validate,
        show=lambda _: console.print(line("vetoed {target}", target=target)), as_json=as_json,
    )  # fmt: skip


@recover.command("status")
@click.argument("subject")
@JSON_OPTION
@click.pass_context
def status(ctx: click.Context, subject: str, as_json: bool) -> None:
    """Where recoveries of SUBJECT's keys stand: custodians, waiting period, vetoes."""
    answer_with(ctx, "GET", f"/v1/recoveries/{quote(subject, safe='')}",
                read=CustodiansView.model_validate, show=_show, as_json=as_json)  # fmt: skip
