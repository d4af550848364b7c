"""Tests for dataset/world/lora.py: new held-out phrasings, the new identity, and replay that never teaches the old."""
from dataset.world.identity import LORA_IDENTITY
from dataset.world.people import LANGS
from world_helpers import generated, out, read_jsonl, user_texts  # noqa: F401  (fixtures)


def test_lora_heldout_phrasings_are_new(out):
    trained = set(user_texts(read_jsonl(out / "lora_identity.jsonl")) + user_texts(read_jsonl(out / "sft.jsonl")))
    heldout = read_jsonl(out / "lora_identity_heldout.jsonl")
    assert len(heldout) >= 20
    assert {r["lang"] for r in heldout} == set(LANGS)
    for row in heldout:
        question = [m for m in row["conversations"] if m["role"] == "user"][-1]["content"]
        assert question not in trained
    rows = read_jsonl(out / "lora_identity.jsonl")
    identity_questions = {q for lang in LANGS for _, q in LORA_IDENTITY["train_questions"][lang]}
    identity = [r for r in rows if r["conversations"][-2]["content"] in identity_questions]
    assert identity and all("小溪" in r["conversations"][-1]["content"] or "Xiaoxi" in r["conversations"][-1]["content"]
                            for r in identity)
    # the rest is replay: the SFT chats, none of them teaching the old identity back
    sft = read_jsonl(out / "sft.jsonl")
    no_old_identity = [r for r in sft if not any("MiniMind" in m["content"] and "你好" not in m["content"]
                                                 and "Hello" not in m["content"] for m in r["conversations"])]
    assert not any("MiniMind" in m["content"] for r in rows for m in r["conversations"] if m["role"] == "assistant")
    replay = [r for r in rows if r["conversations"][-2]["content"] not in identity_questions
              and "MiniMind" not in r["conversations"][-2]["content"]]
    assert len(replay) == len(no_old_identity) and len(replay) < len(sft)
