"""Child process of the kill -9 test: ingests deterministic batches and acknowledges each.

Usage: python -m tests.e2e.crash_worker DB FIRST_BATCH
Prints `ACK <batch>` after `ingest` returned for that batch, i.e. after its commit.
"""

from __future__ import annotations

import sys

from node.store import Store, ingest
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Trust

BATCH = 40
KEYS = [IdentityKey.from_seed(bytes([n]) * 32) for n in range(1, 11)]


def batch_envelopes(batch: int) -> list[bytes]:
    """The envelopes of batch number `batch`: new slots, so none supersede each other."""
    made = []
    for item in range(BATCH):
        issuer, subject = KEYS[item % 10], KEYS[(item * 7 + batch) % 10]
        statement = Trust(subject=subject.identity, context=f"b{batch}-{item}", value=item - 20)
        body = AttestationBody(issuer=issuer.identity, issued_at_ms=batch, statement=statement)
        made.append(sign_attestation(body, issuer).data)
    return made


def main() -> int:
    path, first = sys.argv[1], int(sys.argv[2])
    with Store.open(path) as store:
        for batch in range(first, first + 10_000):
            ingest(store, batch_envelopes(batch), now_ms=10**6, batch_size=BATCH)
            sys.stdout.write(f"ACK {batch}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
