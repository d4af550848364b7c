"""RL prompts (dataset/rl_dataset.py): rendering, references, left-padded batches, and bad rows named by line."""
import json

import pytest

from dataset.rl_dataset import RLAIFDataset, collate_prompts
from model.tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer

TOK = load_tokenizer(DEFAULT_TOKENIZER_DIR)


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return str(path)


def test_prompt_reference_and_batch(tmp_path):
    path = write(tmp_path / "rl.jsonl", [
        {"conversations": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]},
        {"conversations": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}],
         "answer": "4"},
    ])
    ds = RLAIFDataset(path, TOK, max_seq_len=64)
    a, b = ds[0], ds[1]
    assert a["reference"] == "2" and b["reference"] == "4"  # the reply, else the explicit answer
    assert a["prompt"].endswith("<|im_start|>assistant\n") and "2<|im_end|>" not in a["prompt"]
    assert TOK.decode(a["prompt_ids"].tolist()) == a["prompt"]
    batch = collate_prompts([a, b], pad_id=0)
    width = max(len(a["prompt_ids"]), len(b["prompt_ids"]))
    assert batch["prompt_ids"].shape == (2, width)
    assert batch["prompt_mask"][0, -1] == 1 and batch["prompt_mask"].sum(1).tolist() == [len(a["prompt_ids"]),
                                                                                       len(b["prompt_ids"])]


@pytest.mark.parametrize("row, message", [
    ({"conversations": [{"role": "assistant", "content": "x"}]}, "must end with a user turn"),
    ({"conversations": [{"role": "user", "content": "x"}], "answer": 4}, "'answer' must be a string"),
    ({"text": "x"}, "missing field 'conversations'"),
    ('{"conversations": [', "malformed JSON"),
])
def test_bad_rows_are_named_by_line(tmp_path, row, message):
    good = {"conversations": [{"role": "user", "content": "ok"}]}
    path = write(tmp_path / "rl.jsonl", [good, row])
    with pytest.raises(ValueError, match=message) as e:
        RLAIFDataset(path, TOK, max_seq_len=64)
    assert "rl.jsonl:2" in str(e.value)
    with pytest.warns(UserWarning, match="skipped 1 bad line"):
        assert len(RLAIFDataset(path, TOK, max_seq_len=64, skip_bad_lines=True)) == 1


def test_overlong_prompt_refused_not_cut(tmp_path):
    path = write(tmp_path / "rl.jsonl", [{"conversations": [{"role": "user", "content": "word " * 100}]}])
    with pytest.raises(ValueError, match="longer than --max_seq_len 16"):
        RLAIFDataset(path, TOK, max_seq_len=16)[0]
