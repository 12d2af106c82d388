"""The Celery glue's message shape."""

from __future__ import annotations


def test_messages_carry_up_to_slots_per_message() -> None:
    from workers.tasks import messages

    pairs = [(i, f"c{i}") for i in range(7)]
    assert messages("r", pairs, 3) == [("r", [0, 1, 2], ["c0", "c1", "c2"]),
                                       ("r", [3, 4, 5], ["c3", "c4", "c5"]), ("r", [6], ["c6"])]
    assert messages("r", pairs, 1)[4] == ("r", [4], ["c4"])
    assert messages("r", [], 5) == []
