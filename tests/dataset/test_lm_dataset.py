"""Pretrain / SFT / DPO datasets: sample layout and, above all, exact label masks."""

import json
import os

import pytest
import torch
from torch.utils.data import DataLoader

from dataset.lm_dataset import IGNORE_INDEX, DPODataset, PretrainDataset, SFTDataset

BOS, EOS, PAD = 1, 2, 0  # <|im_start|>, <|im_end|>, <|endoftext|> in our tokenizer


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert (t.bos_token_id, t.eos_token_id, t.pad_token_id) == (BOS, EOS, PAD)
    return t


def write_jsonl(path, objs):
    with open(path, "w", encoding="utf-8") as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    return str(path)


def encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


TEXTS = ["小明住在北京，他每天买3个苹果。", "Alice likes green tea every day.", "1 + 2 = 3", "今天上海的天气晴朗"]


# ------------------------------------------------------------------ pretrain

def test_pretrain_layout(tok, tmp_path):
    path = write_jsonl(tmp_path / "pt.jsonl", [{"text": t} for t in TEXTS])
    ds = PretrainDataset(path, tok, max_seq_len=48)
    assert len(ds) == len(TEXTS) and ds.n_bad == 0
    for i, text in enumerate(TEXTS):
        item = ds[i]
        assert set(item) == {"input_ids", "labels"}
        ids, labels = item["input_ids"], item["labels"]
        assert ids.dtype == torch.long and ids.shape == labels.shape == (48,)
        body = [BOS] + encode(tok, text) + [EOS]
        assert len(body) < 48  # this test wants padding
        assert ids.tolist() == body + [PAD] * (48 - len(body))
        # labels: aligned (not shifted) copy of the ids, padding ignored
        assert labels.tolist() == body + [IGNORE_INDEX] * (48 - len(body))


def test_pretrain_truncation(tok, tmp_path):
    path = write_jsonl(tmp_path / "pt.jsonl", [{"text": TEXTS[0]}])
    body = [BOS] + encode(tok, TEXTS[0]) + [EOS]
    ds = PretrainDataset(path, tok, max_seq_len=8)
    item = ds[0]
    assert item["input_ids"].tolist() == body[:8]
    assert item["labels"].tolist() == body[:8]  # no padding -> everything supervised


def test_pretrain_skip_bad_lines(tok, tmp_path):
    path = write_jsonl(tmp_path / "pt.jsonl", [{"text": "a"}, {"text": 5}, {"txt": "b"}, {"text": "c"}])
    with pytest.raises(ValueError, match=r"pt\.jsonl:2: field 'text' must be a string"):
        PretrainDataset(path, tok)
    with pytest.warns(UserWarning):
        ds = PretrainDataset(path, tok, skip_bad_lines=True)
    assert len(ds) == 2 and ds.n_bad == 2


def test_pretrain_packing(tok, tmp_path):
    texts = TEXTS * 3
    path = write_jsonl(tmp_path / "pt.jsonl", [{"text": t} for t in texts])
    stream = []
    for t in texts:
        stream += [BOS] + encode(tok, t) + [EOS]
    L = 16
    ds = PretrainDataset(path, tok, max_seq_len=L, packing=True)
    assert ds.n_tokens == len(stream)
    assert len(ds) == -(-len(stream) // L)  # ceil: the last partial window is kept

    got_ids, got_labels = [], []
    for i in range(len(ds)):
        item = ds[i]
        assert item["input_ids"].shape == (L,)
        got_ids += item["input_ids"].tolist()
        got_labels += item["labels"].tolist()
    n_pad = len(ds) * L - len(stream)
    # Consecutive, non-overlapping windows of the bos+doc+eos stream ...
    assert got_ids == stream + [PAD] * n_pad
    # ... all supervised except the padding of the last window.
    assert got_labels == stream + [IGNORE_INDEX] * n_pad

    # The token cache is reused (keyed by file + tokenizer), not rebuilt.
    cache_file = ds._token_path
    mtime = os.stat(cache_file).st_mtime_ns
    again = PretrainDataset(path, tok, max_seq_len=L, packing=True)
    assert again._token_path == cache_file and os.stat(cache_file).st_mtime_ns == mtime
    assert again[1]["input_ids"].tolist() == stream[L:2 * L]

    # default_collate batches the dicts; workers re-open the memmap.
    batch = next(iter(DataLoader(ds, batch_size=3, num_workers=2)))
    assert batch["input_ids"].shape == (3, L) and batch["labels"].shape == (3, L)


# ----------------------------------------------------------------------- SFT

SYSTEM = "你是一个乐于助人的助手。"
CONV = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "你好！有什么可以帮你？"},
    {"role": "user", "content": "1 + 2 = ?"},
    {"role": "assistant", "content": "1 + 2 = 3"},
]


def expected_sft(tok, conv):
    """Expected (ids, labels) built piece by piece, independently of the dataset.

    ChatML: each message is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``.
    Supervised: assistant content + its ``<|im_end|>``. Not supervised: the
    header ``<|im_start|>assistant\\n`` and the ``\\n`` after ``<|im_end|>``.
    """
    pieces = []  # (text, supervised)
    for m in conv:
        if m["role"] == "assistant":
            pieces += [("<|im_start|>assistant\n", False), (m["content"] + "<|im_end|>", True), ("\n", False)]
        else:
            pieces += [(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n", False)]
    ids, labels = [], []
    for text, sup in pieces:
        t = encode(tok, text)
        ids += t
        labels += t if sup else [IGNORE_INDEX] * len(t)
    return ids, labels


def test_sft_exact_mask(tok, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": CONV}])
    L = 128
    ds = SFTDataset(path, tok, max_seq_len=L)
    item = ds[0]
    ids, labels = item["input_ids"].tolist(), item["labels"].tolist()

    exp_ids, exp_labels = expected_sft(tok, CONV)
    # The piecewise ids must be the ids of the whole rendered chat (sanity
    # check of the independent construction against the real template).
    assert exp_ids == encode(tok, tok.apply_chat_template(CONV, tokenize=False))
    n = len(exp_ids)
    assert n < L
    assert ids == exp_ids + [PAD] * (L - n)
    assert labels == exp_labels + [IGNORE_INDEX] * (L - n)

    # Hand-checkable consequences, stated directly.
    sup = [x for x in labels if x != IGNORE_INDEX]
    assert sup == encode(tok, "你好！有什么可以帮你？") + [EOS] + encode(tok, "1 + 2 = 3") + [EOS]
    assert labels[n - 1] == IGNORE_INDEX and ids[n - 1] == encode(tok, "\n")[0]  # final "\n" not learned
    assert labels[n - 2] == EOS  # but the <|im_end|> before it is
    header = encode(tok, "<|im_start|>assistant\n")
    first = labels.index(next(x for x in labels if x != IGNORE_INDEX))
    assert ids[first - len(header):first] == header  # header right before, unsupervised
    assert all(x == IGNORE_INDEX for x in labels[first - len(header):first])


def test_sft_truncation_keeps_partial_reply(tok, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": CONV}])
    exp_ids, exp_labels = expected_sft(tok, CONV)
    cut = len(exp_ids) - 4  # inside the second reply
    item = SFTDataset(path, tok, max_seq_len=cut)[0]
    assert item["input_ids"].tolist() == exp_ids[:cut]
    assert item["labels"].tolist() == exp_labels[:cut]
    assert item["labels"][-1] != IGNORE_INDEX  # the cut reply stays supervised


def test_sft_prompt_longer_than_max_seq_len(tok, tmp_path):
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": CONV}])
    item = SFTDataset(path, tok, max_seq_len=5)[0]
    assert item["input_ids"].shape == (5,)
    assert (item["labels"] == IGNORE_INDEX).all()  # valid sample, nothing supervised


def test_sft_without_system_and_collate(tok, tmp_path):
    conv = CONV[1:]
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": conv}, {"conversations": CONV}])
    ds = SFTDataset(path, tok, max_seq_len=96)
    exp_ids, exp_labels = expected_sft(tok, conv)
    assert ds[0]["labels"].tolist()[:len(exp_labels)] == exp_labels
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["input_ids"].shape == batch["labels"].shape == (2, 96)


def test_sft_chat_opening_with_assistant(tok, tmp_path):
    # transformers cannot render an empty prefix; the span is located instead.
    conv = [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"}]
    path = write_jsonl(tmp_path / "sft.jsonl", [{"conversations": conv}])
    exp_ids, exp_labels = expected_sft(tok, conv)
    item = SFTDataset(path, tok, max_seq_len=len(exp_ids))[0]
    assert item["input_ids"].tolist() == exp_ids
    assert item["labels"].tolist() == exp_labels


@pytest.mark.parametrize("conv, reason", [
    ([{"role": "user", "content": "hi"}, {"role": "xyz", "content": "?"}], "unknown role 'xyz'"),
    ([{"role": "user", "content": "hi"}], "no assistant turn"),
    ([], "non-empty list"),
    ([{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}], "string 'content'"),
])
def test_sft_validation_errors(tok, tmp_path, conv, reason):
    good = {"conversations": CONV}
    path = write_jsonl(tmp_path / "sft.jsonl", [good, good, {"conversations": conv}])
    with pytest.raises(ValueError) as e:
        SFTDataset(path, tok)
    assert f"{os.path.abspath(path)}:3: " in str(e.value)
    assert reason in str(e.value)
    with pytest.warns(UserWarning):
        ds = SFTDataset(path, tok, skip_bad_lines=True)
    assert len(ds) == 2 and ds.n_bad == 1


# ----------------------------------------------------------------------- DPO

def test_dpo_labels_only_final_reply(tok, tmp_path):
    prompt = CONV[:4]  # system, user, assistant (earlier turn), user
    chosen = prompt + [{"role": "assistant", "content": "1 + 2 = 3"}]
    rejected = prompt + [{"role": "assistant", "content": "1 + 2 = 5, I think"}]
    path = write_jsonl(tmp_path / "dpo.jsonl", [{"chosen": chosen, "rejected": rejected}])
    L = 128
    item = DPODataset(path, tok, max_seq_len=L)[0]
    assert set(item) == {"chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"}

    prompt_ids = encode(tok, tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
    for side, reply in (("chosen", "1 + 2 = 3"), ("rejected", "1 + 2 = 5, I think")):
        ids, labels = item[f"{side}_input_ids"].tolist(), item[f"{side}_labels"].tolist()
        reply_ids = encode(tok, reply) + [EOS]
        full = prompt_ids + reply_ids + encode(tok, "\n")
        assert ids == full + [PAD] * (L - len(full))
        # Only the final reply + <|im_end|>; the earlier assistant turn is prompt.
        exp = [IGNORE_INDEX] * len(prompt_ids) + reply_ids + [IGNORE_INDEX] * (L - len(prompt_ids) - len(reply_ids))
        assert labels == exp

    # chosen and rejected share the prompt tokens exactly.
    n = len(prompt_ids)
    assert item["chosen_input_ids"][:n].tolist() == item["rejected_input_ids"][:n].tolist() == prompt_ids


def test_dpo_validation(tok, tmp_path):
    u = {"role": "user", "content": "hi"}
    a = {"role": "assistant", "content": "hello"}
    path = write_jsonl(tmp_path / "dpo.jsonl", [{"chosen": [u, a], "rejected": [u]}])
    with pytest.raises(ValueError, match=r"dpo\.jsonl:1: 'rejected' must end with an assistant message"):
        DPODataset(path, tok)
    other = {"role": "user", "content": "bye"}
    path = write_jsonl(tmp_path / "dpo2.jsonl", [{"chosen": [u, a], "rejected": [other, a]}])
    with pytest.raises(ValueError, match=r"dpo2\.jsonl:1: .*share the prompt"):
        DPODataset(path, tok)
