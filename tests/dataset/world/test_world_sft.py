"""Tests for dataset/world/sft.py: the promised variety, and no held-out person in any training chat."""
from world_helpers import (all_texts, generated, names_in, out, people_of, read_jsonl,  # noqa: F401  (fixtures)
                           user_texts, world)


def test_sft_has_the_promised_variety(out):
    rows = read_jsonl(out / "sft.jsonl")
    convs = [r["conversations"] for r in rows]
    assert any(c[0]["role"] == "system" for c in convs)
    assert sum(1 for c in convs if sum(m["role"] == "user" for m in c) >= 2) > 100, "multi-turn conversations"
    replies = " ".join(m["content"] for c in convs for m in c if m["role"] == "assistant")
    assert "我是MiniMind" in replies and "I am MiniMind" in replies
    users = user_texts(rows)
    assert "What is 3 plus 4?" in users or "Compute 3 + 4." in users
    assert any("翻译成英文" in u for u in users) and any(u.startswith("Tell me about") for u in users)


def test_heldout_people_never_appear_in_training_chat(out, world):
    test_people = people_of(world, "test")
    for rel in ("sft.jsonl", "dpo.jsonl", "qa_train_sample.jsonl", "lora_identity.jsonl", "reason.jsonl"):
        assert names_in(all_texts(read_jsonl(out / rel)), test_people) == [], rel
    # sanity check of the helper: the train half does show up in SFT
    assert len(names_in(all_texts(read_jsonl(out / "sft.jsonl")), people_of(world, "train"))) == 200
