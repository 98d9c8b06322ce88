"""trustnode's runtime: the member's node, its rooms, and its faces (DESIGN §2).

Unlike `protocol/`, this package does I/O (except `node.trust`, which is pure).
Where a change goes:

- `service/`  the `Node` a member runs, assembled from its parts (embed this);
- `trust/`    the trust engine: scores, explanations, claims (pure);
- `names/`    petnames, self-chosen names, names contacts give, impostor checks;
- `store/`    the SQLite store, the in-memory store, the ingest pipeline;
- `gossip/`   replication: sessions, push tree, reconciliation, intake, peers, relay
              policy, relayed circuits, moving a relayed session to a punched link;
- `net/`      streams: the Noise transport, the simulated network, addresses, LAN
              beacons, dial-back checks, hole punching, port mapping (UPnP-IGD);
- `home/`     a member's folder: config, data directory, key file, logs, lock;
- `api/`, `cli/`, `web/`  the faces: the local HTTP API, the command line, the web app;
- `demo/`     the demo community and the offline walkthrough.
"""
