"""Cost of identity resolution (SPEC §16-§17) in the trust engine's input path.

Device keys and rotations are applied as a key-to-member mapping when
attestations enter the engine (`node.trust.identity`); the walks, full
recomputes (`benchmarks.trust`) and explanations run on the mapped graph
unchanged, so their cost does not move. What the mapping costs is on
`TrustEngine.add`, measured here on one seeded set of vouches:

* without the layer (its `view` replaced by the identity function);
* with the layer, nobody bound or rotated (the fast path);
* with the layer, `--devices` members each pairing one device and as many
  rotating, in the same batch (one rebuild of the engine's state).

Run from the repository root: `python -m benchmarks.identity [--vouches N]`.
Figures are the best of `--runs` builds.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

from node.trust import TrustEngine
from node.trust import identity as layer
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey
from protocol.statement import Statement, Trust
from protocol.succession import commit_statement, rotation_statement

NOW = 10**12


def _signed(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def _sets(
    vouches: int, devices: int, seed: int
) -> tuple[IdentityKey, list[Attestation], list[Attestation]]:
    rng = random.Random(seed)
    members = [IdentityKey.from_seed(rng.randbytes(32)) for _ in range(max(50, vouches // 100))]
    plain = []
    for i in range(vouches):
        a, b = rng.sample(members, 2)
        plain.append(_signed(a, Trust(subject=b.identity, value=rng.randint(1, 100)), 1000 + i))
    extra = []
    for n in range(devices):
        root, device, nxt = (
            members[n + 1],
            IdentityKey.from_seed(rng.randbytes(32)),
            IdentityKey.from_seed(rng.randbytes(32)),
        )
        extra += [
            _signed(root, grant_statement(device.identity), 10),
            _signed(device, accept_statement(root.identity), 10),
            _signed(root, commit_statement(nxt.identity), 10),
            _signed(nxt, rotation_statement(root.identity, None), 2000 + vouches),
        ]
    return members[0], plain, plain + extra


def _best(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vouches", type=int, default=40_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    viewer, plain, bound = _sets(args.vouches, args.devices, args.seed)

    def build(attestations: list[Attestation]) -> Callable[[], object]:
        return lambda: TrustEngine(viewer.identity, now_ms=NOW, attestations=attestations)

    with_layer = _best(args.runs, build(plain))
    with_bindings = _best(args.runs, build(bound))
    view, displaced = layer.IdentityLayer.view, layer.IdentityLayer.displaced
    try:
        layer.IdentityLayer.view = lambda self, a: a  # type: ignore[method-assign,assignment]
        layer.IdentityLayer.displaced = lambda self, a: None  # type: ignore[method-assign,assignment]
        without = _best(args.runs, build(plain))
    finally:
        layer.IdentityLayer.view, layer.IdentityLayer.displaced = view, displaced  # type: ignore[method-assign]
    print(f"TrustEngine.add of {args.vouches} vouches, best of {args.runs}:")
    print(f"  without the identity layer       {without:8.1f} ms")
    print(
        f"  layer, nobody bound or rotated   {with_layer:8.1f} ms  "
        f"({(with_layer / without - 1) * 100:+.1f} %)"
    )
    print(
        f"  layer, {args.devices} devices + {args.devices} rotations {with_bindings:8.1f} ms  "
        f"({(with_bindings / without - 1) * 100:+.1f} %: one rebuild in the batch)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
