import json
import math

import pytest
import torch

from evals.answers import check_answer
from evals.batching import left_pad
from evals.ceval_data import CEVAL_CATEGORIES, read_ceval_split
from evals.choice import LETTERS, build_prompt, format_question, letter_token_ids, predict_choices
from evals.lm_loss import heldout_loss
from evals.qa import chat_replies, exact_match
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


def tiny(vocab):
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, vocab_size=vocab)).eval()


def test_question_format_and_letter_ids(tok):
    assert format_question("1+1=?", ["1", "2", "3", "4"], "B") == "1+1=?\nA. 1\nB. 2\nC. 3\nD. 4\n答案：B"
    ids = letter_token_ids(tok)
    assert len(set(ids)) == 4 and [tok.decode([i]) for i in ids] == list(LETTERS)
    chat = build_prompt(tok, "q", ["a", "b", "c", "d"], chat=True)
    assert chat.startswith("<|im_start|>user\nq\nA. a") and chat.endswith("<|im_start|>assistant\n")


def test_predict_choices_reads_the_letter_logits(tok):
    model = tiny(len(tok))
    ids = letter_token_ids(tok)
    prompts = [build_prompt(tok, f"question {i}" + " pad" * i, ["x", "y", "z", "w"]) for i in range(5)]
    preds = predict_choices(model, tok, prompts, batch_size=2)  # batched and left-padded
    with torch.no_grad():
        alone = [model(left_pad(tok, [p])[0]).logits[0, -1, ids].argmax().item() for p in prompts]
    assert preds == [LETTERS[i] for i in alone]


def test_random_model_scores_near_chance(tok):
    model = tiny(len(tok))
    torch.manual_seed(1)
    answers = [LETTERS[i] for i in torch.randint(0, 4, (200,)).tolist()]
    prompts = [build_prompt(tok, f"q{i}", [f"o{i}{j}" for j in range(4)]) for i in range(200)]
    acc = sum(p == a for p, a in zip(predict_choices(model, tok, prompts, batch_size=50), answers)) / 200
    assert 0.15 <= acc <= 0.35


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n", encoding="utf-8")


def test_ceval_reader_and_errors(tmp_path):
    header = ["id", "question", "A", "B", "C", "D", "answer"]
    write_csv(tmp_path / "val" / "law_val.csv", header, [["0", "q", "a", "b", "c", "d", "C"]])
    write_csv(tmp_path / "test" / "law_test.csv", header[:-1], [["0", "q", "a", "b", "c", "d"]])
    rows = read_ceval_split(str(tmp_path), "val")
    assert rows == [{"subject": "law", "id": "0", "question": "q", "options": ["a", "b", "c", "d"], "answer": "C"}]
    assert read_ceval_split(str(tmp_path), "test")[0]["answer"] is None
    write_csv(tmp_path / "val" / "art_val.csv", header, [["0", "q", "a", "b", "c", "d", "E"]])
    with pytest.raises(ValueError, match=r"art_val.csv:2: answer must be one of"):
        read_ceval_split(str(tmp_path), "val")
    write_csv(tmp_path / "dev" / "x_dev.csv", ["id", "question", "A", "B"], [["0", "q", "a", "b"]])
    with pytest.raises(ValueError, match=r"x_dev.csv: missing column\(s\) C, D"):
        read_ceval_split(str(tmp_path), "dev")
    with pytest.raises(FileNotFoundError):
        read_ceval_split(str(tmp_path), "nope")


def test_heldout_loss_and_bits_per_byte(tok, tmp_path):
    path = tmp_path / "h.jsonl"
    texts = ["hello world", "你好，世界", "3 + 4 = 7"]
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    model = tiny(len(tok))
    r = heldout_loss(model, tok, str(path), batch_size=2)
    n_bytes = sum(len(t.encode()) + 1 for t in texts)  # + eos
    assert r["bytes"] == n_bytes and r["docs"] == 3
    assert math.isclose(r["bpb"], r["loss"] * r["tokens"] / math.log(2) / n_bytes, rel_tol=1e-6)
    assert abs(r["loss"] - math.log(len(tok))) < 0.5  # an untrained model is near uniform


def test_chat_replies_batched_equal_single_and_exact_match(tok):
    model = tiny(len(tok))
    convs = [[{"role": "user", "content": "你好"}], [{"role": "user", "content": "a much longer question here"},
                                                   {"role": "assistant", "content": "reference"}]]
    batched = chat_replies(model, tok, convs, max_new_tokens=6, batch_size=2)
    single = [chat_replies(model, tok, [c], max_new_tokens=6)[0] for c in convs]
    assert batched == single
    recs = [{"answer": "Beijing", "lang": "en", "kind": "echo"}, {"answer": "上海", "lang": "zh", "kind": "echo"}]
    assert exact_match(recs, ["He lives in beijing.", "北京"], check_answer) == {"all": 0.5, "en/echo": 1.0,
                                                                                "zh/echo": 0.0}


def test_ceval_has_52_subjects_in_4_categories():
    subjects = [s for group in CEVAL_CATEGORIES.values() for s in group]
    assert len(subjects) == len(set(subjects)) == 52
    assert {k: len(v) for k, v in CEVAL_CATEGORIES.items()} == {"STEM": 20, "Social Science": 10, "Humanities": 11,
                                                                "Other": 11}
