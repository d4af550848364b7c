"""choice_reason.jsonl / rlaif_choice.jsonl: recall-then-choose multiple-choice rows (dataset/world/choice_reason.py)."""
import re

from dataset.choice_format import LETTERS
from dataset.world.choice_reason import build_choice_reason
from dataset.world.people import make_people, person_name


def test_rows_are_consistent_and_avoid_held_out_people():
    people = make_people(0, 20, 0.5)
    held_out = {person_name(p, lang) for p in people if p["split"] == "test" for lang in ("zh", "en")}
    sft, rl = build_choice_reason(people, seed=0, n_sft=400, n_rl=200)
    assert len(sft) == 400 and len(rl) == 200
    for rows in (sft, rl):
        assert sorted({r["answer"] for r in rows}) == list(LETTERS)
        assert max(sum(r["answer"] == x for r in rows) for x in LETTERS) <= len(rows) // 4 + 1  # balanced
        for r in rows:
            prompt, reply = r["conversations"][0]["content"], r["conversations"][1]["content"]
            assert prompt.endswith("答案：") and not any(name in prompt for name in held_out)
            options = dict(re.findall(r"^([ABCD])\. (.*)$", prompt, re.M))
            m = re.match(r"<think>\n(.*?)\n((?:[ABCD]\. .* [✓✗]\n){4})</think>\n<answer>\n([ABCD])\n</answer>\Z",
                         reply, re.S)
            assert m and m.group(3) == r["answer"]
            recall = m.group(1)
            # the walk copies every option in order and marks exactly the answer's line
            walk = re.findall(r"^([ABCD])\. (.*) ([✓✗])$", m.group(2), re.M)
            assert [(x, v) for x, v, _ in walk] == sorted(options.items())
            assert [x for x, _, mark in walk if mark == "✓"] == [r["answer"]]
            # the chosen option's value is what the recall states, and no other option's is
            assert options[r["answer"]] in recall
            assert sum(v in recall for v in options.values()) == 1 or "=" in recall
            if "=" in recall:  # arithmetic: two-digit first operand, never the exam's one-digit sums
                a = int(recall.split()[0])
                assert 10 <= a <= 19 and recall.endswith(" = " + options[r["answer"]])
    assert sft[0] != rl[0]
