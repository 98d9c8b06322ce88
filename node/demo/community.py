"""`trustnode demo`: a small street community of real nodes, on this machine, for real.

Six neighbours each run a full node (`open_node`: their own key, SQLite store,
Noise-encrypted TCP on loopback, gossip and trust engine) in a temporary
folder. They vouch for each other, certify a newcomer's residence, rate a
loan, flag a scammer and withdraw a vouch; the attestations spread by gossip
until every store holds the same set; then each neighbour's node answers,
from its own point of view, how far to trust the newcomer and why.

Everything printed is computed by the same code the daemon runs; nothing is
scripted but who says what. With `keep`, the nodes keep running with their
local APIs, and the report says how to query them with the CLI.
"""

from __future__ import annotations

import random
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from rich.console import Console
from rich.table import Table

from node.api.access import ADDRESS_FILE, api_url, ensure_token
from node.api.app import create_app
from node.api.server import serve_api
from node.cli.render import data, short
from node.cli.render import line as text_line
from node.home.config import CONFIG_FILE, NodeConfig, render_config
from node.service import Node, open_node
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityId, IdentityKey, encode_identity_text
from protocol.statement import Kind, Profile

__all__ = ["run_community_demo"]

NEIGHBOURS = ("alice", "bob", "carol", "dave", "erin", "grace")
CONVERGE_TIMEOUT_S = 30.0
RESIDENT = "resident:rue-des-lilas"


@dataclass
class _Street:
    nodes: dict[str, Node]
    mallory_key: IdentityKey

    @property
    def mallory(self) -> IdentityId:
        return self.mallory_key.identity


async def _label(node: Node, identity: IdentityId) -> str:
    """How `node` names `identity` (its petname, its contacts', ~self-claimed, else the id)."""
    return (await node.names([identity]))[identity].label


@asynccontextmanager
async def _street(folder: Path, *, community_id: bytes, key: bytes) -> AsyncIterator[_Street]:
    """Start the six nodes; each bootstraps from alice, peer exchange does the rest."""
    nodes: dict[str, Node] = {}
    async with AsyncExitStack() as stack:
        for name in NEIGHBOURS:
            bootstrap = () if name == "alice" else (nodes["alice"].listen_address or "",)
            config = NodeConfig(
                data_dir=folder / name, name=name, community_id=community_id,
                community_key=key, listen="127.0.0.1:0", bootstrap=bootstrap,
                api_listen="127.0.0.1:0", resync_interval_s=5.0,
            )  # fmt: skip
            nodes[name] = await stack.enter_async_context(
                open_node(config, rng=random.Random(len(nodes)))  # noqa: S311  # peer sampling
            )
        # mallory runs no node: a key is all a scammer needs to be talked about
        yield _Street(nodes=nodes, mallory_key=IdentityKey.generate())


def _impostor_profile(street: _Street) -> bytes:
    """Mallory calls himself Grace, with a Cyrillic a (U+0430): it reads the same."""
    profile = Profile(subject=street.mallory, name="Gr\u0430ce")
    body = AttestationBody(issuer=street.mallory, issued_at_ms=1, statement=profile)
    return sign_attestation(body, street.mallory_key).data


async def _say_things(street: _Street, console: Console) -> int:
    """Who says what; returns how many attestations were issued."""
    n = street.nodes
    me = {name: node.identity for name, node in n.items()}
    said: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        *((f"{name} publishes a profile: {name.capitalize()}",
           lambda node=node, name=name: node.set_profile(name.capitalize()))
          for name, node in n.items()),
        ("alice vouches for bob (they carpool every week)",
         lambda: n["alice"].trust(me["bob"], 80, context="carpool")),
        ("alice vouches for bob in general", lambda: n["alice"].trust(me["bob"], 70)),
        ("alice vouches for erin", lambda: n["alice"].trust(me["erin"], 60)),
        ("bob vouches for carol", lambda: n["bob"].trust(me["carol"], 70)),
        ("bob vouches for carol for carpooling",
         lambda: n["bob"].trust(me["carol"], 60, context="carpool")),
        ("carol vouches for dave", lambda: n["carol"].trust(me["dave"], 80)),
        ("erin vouches for dave", lambda: n["erin"].trust(me["dave"], 50)),
        ("dave vouches for alice", lambda: n["dave"].trust(me["alice"], 90)),
        ("dave vouches for grace, who just moved in, and says who she is for him",
         lambda: n["dave"].trust(me["grace"], 60, name="Grace (new at no. 12)")),
        ("erin vouches for grace too", lambda: n["erin"].trust(me["grace"], 40)),
        ("carol certifies grace lives on rue des Lilas (saw a bill; only a hash travels)",
         lambda: n["carol"].certify(me["grace"], RESIDENT, private_value="12 rue des Lilas")),
        ("dave certifies grace lives on rue des Lilas",
         lambda: n["dave"].certify(me["grace"], RESIDENT)),
        ("bob rates lending his drill to grace: +80",
         lambda: n["bob"].rate(me["grace"], 80, context="lending", reference="drill-2026-11-28")),
        ("erin rates grace +60 for lending",
         lambda: n["erin"].rate(me["grace"], 60, context="lending")),
        ("dave vouches for mallory, who sold him a bike",
         lambda: n["dave"].trust(street.mallory, 50)),
        ("erin flags mallory: the bike was stolen",
         lambda: n["erin"].distrust(street.mallory, 100)),
        ("dave withdraws his vouch for mallory",
         lambda: n["dave"].revoke(Kind.TRUST, street.mallory, "general")),
        ("mallory publishes a profile: he too calls himself Grace (with a Cyrillic a)",
         lambda: n["dave"].import_envelopes([_impostor_profile(street)])),
    ]  # fmt: skip
    for line, say in said:
        await say()
        console.print(f"  {line}")
    return len(said)


async def _converge(street: _Street, count: int) -> float:
    started = trio.current_time()
    with trio.fail_after(CONVERGE_TIMEOUT_S):
        for node in street.nodes.values():
            await node.wait_for(count)
    return trio.current_time() - started


async def _viewpoints(street: _Street, console: Console) -> None:
    grace = street.nodes["grace"].identity
    table = Table(title="Each neighbour's node, from its own point of view", title_justify="left")
    for column in ("viewpoint", "trust in grace", "mostly via", "resident?", "lending",
                   "mallory"):  # fmt: skip
        table.add_column(column, no_wrap=True)
    for name, node in street.nodes.items():
        if name == "grace":
            continue
        why = await node.explain(grace)
        via = "-"
        if why.first_hops:
            contact, share = why.first_hops[0]
            via = "her directly" if contact == grace else await _label(node, contact)
            via += f" ({share / why.score:.0%})" if why.score else ""
        claim = await node.claim(grace, RESIDENT)
        if node.identity in claim.certifiers:
            resident = "yes (own)"
        else:
            verdict = "yes" if claim.accepted else "no"
            resident = f"{verdict} ({claim.independent}/{claim.required} chains)"
        rating, _ = await node.rating(grace, "lending")
        rated = "-" if rating.value is None else f"{rating.value * 100:+.0f}"
        mallory = await node.explain(street.mallory)
        reason = f" ({mallory.why_not.value.replace('_', ' ')})" if mallory.why_not else ""
        table.add_row(name, f"{why.score:.3f}", data(via), resident, rated,
                      f"{mallory.score:.3f}{reason}")  # fmt: skip
    console.print(table)
    console.print(
        "mallory: dave withdrew his vouch and erin flagged him, so no chain of vouches reaches "
        "him. A claim needs independent chains: two certifiers behind one contact count once."
    )


async def _alice_names(street: _Street, console: Console) -> None:
    """Alice's node names everyone: her petnames, her contacts' names, ~self-claimed ones."""
    alice = street.nodes["alice"]
    await alice.set_petname(street.nodes["bob"].identity, "Bob (carpool)")
    await alice.set_petname(street.nodes["erin"].identity, "Erin")
    everyone = [node.identity for node in street.nodes.values()] + [street.mallory]
    names = await alice.names(everyone)
    table = Table(title="\nWho is who, for alice's node", title_justify="left")
    for column in ("identity", "shown as", "because"):
        table.add_column(column, no_wrap=True)
    because = {
        "petname": "her petname (never leaves her node)",
        "contacts": "what contacts she trusts call them",
        "self": "self-claimed: their own profile, unchecked",
        "id": "no name known",
    }
    for identity in everyone:
        name = names[identity]
        shown = data(name.label)  # names are data, never markup
        reason = "her own identity" if identity == alice.identity else because[name.source.value]
        table.add_row(short(encode_identity_text(identity)), shown, reason)
    console.print(table)
    for impostor in names[street.mallory].impostors:
        who = names[street.mallory].label
        console.print(text_line("  [yellow]warning[/] about {who}: {text}", who=who,
                                text=impostor.warning))  # fmt: skip


async def _alice_explains(street: _Street, console: Console) -> None:
    alice = street.nodes["alice"]
    grace = street.nodes["grace"].identity
    label = {i: await _label(alice, i) for i in [n.identity for n in street.nodes.values()]}
    why = await alice.explain(grace, top_paths=3)
    console.print(
        f"\n[bold]Why alice trusts grace {why.score:.3f}[/] (the chance that a chain of vouches "
        "from alice reaches her):"
    )
    for route, share in why.paths:
        route_text = " -> ".join(label.get(i, "?") for i in route)
        console.print(text_line(f"  {share:5.0%} of it along {{route}}", route=route_text))
    claim = await alice.claim(grace, RESIDENT)
    chains = "; ".join(" -> ".join(label.get(i, "?") for i in p) for p in claim.paths)
    console.print(text_line("  resident of rue des Lilas: certified by independent chains {c}",
                            c=chains))  # fmt: skip
    carpool = await alice.explain(street.nodes["carol"].identity, "carpool")
    console.print(
        f"  for carpooling alice trusts carol {carpool.score:.3f} "
        f"(only bob's carpool vouch counts in that context)"
    )


async def _login_path(app: Any, token: str) -> str:
    """A one-time web-app login path, asked of `app` as `trustnode open` asks a daemon."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        answer = await client.post("/v1/login-links", headers=headers)
    return str(answer.json()["path"])


async def _serve_apis(street: _Street, folder: Path, console: Console) -> None:
    links: dict[str, str] = {}
    async with trio.open_nursery() as nursery:
        for name, node in street.nodes.items():
            data = folder / name
            config_path = data / CONFIG_FILE
            config_path.write_text(render_config(node.config))
            config_path.chmod(0o600)  # it holds the community key (node.home.config refuses more)
            token = ensure_token(data)
            app = create_app(node, token=token)
            address = await nursery.start(serve_api, app, "127.0.0.1:0")
            (data / ADDRESS_FILE).write_text(address + "\n")
            links[name] = api_url(address) + await _login_path(app, token)
        grace = encode_identity_text(street.nodes["grace"].identity)
        console.print("\nThe nodes keep running (Ctrl-C stops them). Ask them yourself:")
        # The folder is the member's to name: data, not markup (node.cli.render).
        for member, command in (("bob", f"explain {grace}"), ("erin", "status"),
                                ("alice", "peers")):  # fmt: skip
            console.print(text_line("  trustnode --data-dir {folder} {command}",
                                    folder=str(folder / member), command=command))  # fmt: skip
        console.print(
            "\nOr open each neighbour's web app (each link works once, for five "
            "minutes; `trustnode --data-dir FOLDER open` makes a new one):"
        )
        for member, link in links.items():
            console.print(text_line("  {member}: {link}", member=member, link=link))
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()


async def run_community_demo(console: Console, *, folder: Path, keep: bool = False) -> None:
    """Run the street demo in `folder` (a temporary directory the caller removes)."""
    started = trio.current_time()
    community_id, key = secrets.token_bytes(32), secrets.token_bytes(32)
    console.print(
        f"Starting {len(NEIGHBOURS)} neighbours' nodes: own keys, SQLite stores, "
        f"encrypted TCP on 127.0.0.1, in {folder}"
    )
    async with _street(folder, community_id=community_id, key=key) as street:
        console.print(
            "They say what they know; each statement is signed and stored, then gossiped:"
        )
        count = await _say_things(street, console)
        took = await _converge(street, count)
        console.print(
            f"All {len(street.nodes)} stores hold the same {count} attestations "
            f"({took:.2f} s after the last one was signed).\n"
        )
        await _viewpoints(street, console)
        await _alice_names(street, console)
        await _alice_explains(street, console)
        if keep:
            await _serve_apis(street, folder, console)
    console.print(f"\nStopped every node cleanly after {trio.current_time() - started:.1f} s.")
