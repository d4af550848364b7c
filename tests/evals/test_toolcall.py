"""evals/toolcall.py: which held-out questions are asked and which tool each expects."""
from collections import Counter

from dataset.world import make_world
from dataset.world.reasoning import REASON_KINDS
from evals.toolcall import KINDS, load_items


def test_items_expect_the_tool_that_answers_them(tmp_path):
    make_world(tmp_path, seed=0)
    items = load_items(str(tmp_path))
    assert Counter(it["kind"] for it in items) == {"arithmetic": 200, "fact": 320, "chain": 240, "none": 80}
    assert {it["kind"] for it in items} == set(KINDS)
    arithmetic = [it for it in items if it["kind"] == "arithmetic"]
    assert {it["group"] for it in arithmetic} == set(REASON_KINDS)
    for it in arithmetic:  # weekdays and dates are named, which the calculator cannot do
        assert it["expected"] == (["days_after"] if it["group"] in ("weekday", "date") else ["calculator"])
    assert all(it["expected"] == ["lookup_person"] for it in items if it["kind"] == "fact")
    assert all(it["expected"] == [] for it in items if it["kind"] == "none")
    assert {(it["group"], tuple(it["expected"])) for it in items if it["kind"] == "chain"} == {
        ("age", ("lookup_person", "calculator")), ("weekday", ("lookup_person", "weekday")),
        ("date_after", ("lookup_person", "days_after"))}
    assert len(load_items(str(tmp_path), n_per_kind=3)) == 12
