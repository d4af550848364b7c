"""Tests for dataset/world/dpo.py: well-formed pairs, true chosen answers, rejected replies that are really worse."""
from dataset.world.people import LANGS
from evals.answers import check_answer
from world_helpers import check_messages, generated, out, read_jsonl, world  # noqa: F401  (fixtures)


def test_dpo_files_parse_and_match_schema(out):
    for rel in ("dpo.jsonl", "dpo_heldout.jsonl"):
        rows = read_jsonl(out / rel)
        assert rows, rel
        for row in rows:
            assert {"chosen", "rejected"} <= set(row)
            check_messages(row["chosen"])
            check_messages(row["rejected"])
            assert row["chosen"][:-1] == row["rejected"][:-1], "same prompt"
            assert row["chosen"][-1]["content"] != row["rejected"][-1]["content"]


def test_dpo_heldout_answers_are_true(out, world):
    by_name = {p["name_" + lang]: p for p in world["people"] for lang in LANGS}
    for row in read_jsonl(out / "dpo_heldout.jsonl"):
        person = by_name[row["person"]]
        assert person["split"] == "test"
        assert row["answer"] == person[row["attribute"]][row["lang"]]
        assert check_answer(row["chosen"][-1]["content"], row["answer"])
        chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        kind = row["rejected_kind"]  # what the rejected reply does wrong, for the per-kind preference accuracy
        assert (kind == "repeat") == (chosen in rejected)
        assert kind in ("wrong", "hedge", "repeat")
        if kind != "repeat":  # a wrong fact or a hedge never states the true value
            assert not check_answer(rejected, row["answer"]), row
