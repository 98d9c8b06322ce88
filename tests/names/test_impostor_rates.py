"""The impostor figures of benchmarks/impostors.py, held: every disguise but
multi-character sequences is flagged or refused, and different names are not."""

from __future__ import annotations

from benchmarks.impostors import measure


def test_every_single_character_disguise_is_flagged_or_refused() -> None:
    figures = measure()
    rows = figures["per_disguise"]
    assert isinstance(rows, dict)
    for label, row in rows.items():
        if label == "rn for m (a sequence)":
            continue  # TR39's sequence mappings are not applied (node.names.skeleton)
        assert row["detected"] + row["refused"] == row["tried"], label
    # The only alarms between different names: a petname and its own core, by design
    # (`Grace (rue des Lilas)` is my Grace; a stranger calling himself Grace is flagged).
    assert figures["false_alarm_examples"] == [
        "Grace (rue des Lilas) ~ Grace",
        "Grace ~ Grace (rue des Lilas)",
    ]
