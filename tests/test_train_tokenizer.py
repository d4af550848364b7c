import json
import os
import re
import subprocess
import sys

import pytest
from tokenizers import Tokenizer

from dataset.jsonl_files import iter_texts
from model.tokenizer_train import CHAT_TEMPLATE, CJK_CHAR_CLASS, train_tokenizer

try:  # tests/ as a plain dir (rootdir-relative import) ...
    from conftest import REPO_ROOT, make_bilingual_corpus, write_jsonl
except ImportError:  # ... or as a package, should someone add tests/__init__.py
    from tests.conftest import REPO_ROOT, make_bilingual_corpus, write_jsonl

CJK_RE = re.compile(CJK_CHAR_CLASS)


@pytest.fixture(scope="module")
def hf_tok(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture(scope="module")
def raw_tok(tiny_tokenizer_dir):
    return Tokenizer.from_file(os.path.join(tiny_tokenizer_dir, "tokenizer.json"))


ROUND_TRIP_TEXTS = [
    "你好，世界！今天北京的天气很好。",
    "Hello world, this is  a test with double  spaces. ",
    " leading space and trailing newline\n",
    "emoji 😀🚀❤️🐱 and a rare one 🦩",
    "混合 mixed 文本\nline two\n\n\tTabbed 123 + 456 = 579",
    "全角：（括号）【方括号】ＡＢＣ１２３",
    "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n<think>想一想</think><answer>好</answer><|im_end|><|endoftext|>",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_round_trip(hf_tok, raw_tok, text):
    ids = hf_tok.encode(text)
    assert hf_tok.decode(ids) == text
    assert raw_tok.decode(raw_tok.encode(text).ids, skip_special_tokens=False) == text


def test_reserved_tokens_are_single_ids(hf_tok):
    expected = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2,
                "<think>": 3, "</think>": 4, "<answer>": 5, "</answer>": 6}
    for token, idx in expected.items():
        assert hf_tok.encode(token) == [idx]
        assert hf_tok.convert_tokens_to_ids(token) == idx
    ids = hf_tok.encode("a<think>b</think><answer>c</answer>")
    assert [i for i in ids if i < 7] == [3, 4, 5, 6]


def test_tags_are_not_special(hf_tok):
    # skip_special_tokens drops ChatML markers but keeps the reasoning tags.
    ids = hf_tok.encode("<|im_start|><think>x</think><answer>y</answer><|im_end|>")
    assert hf_tok.decode(ids, skip_special_tokens=True) == "<think>x</think><answer>y</answer>"


def test_autotokenizer_config(hf_tok, tiny_tokenizer_dir):
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (1, 2, 0)
    assert hf_tok.unk_token_id == 0
    assert len(hf_tok) == 600
    assert hf_tok.model_max_length == 32768
    # No implicit bos/eos: the chat template places them explicitly.
    assert hf_tok.encode("hi") == hf_tok("hi")["input_ids"]
    assert hf_tok.encode("hi")[0] not in (0, 1, 2) and hf_tok.encode("hi")[-1] not in (0, 1, 2)
    with open(os.path.join(tiny_tokenizer_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["chat_template"] == CHAT_TEMPLATE
    assert cfg["add_bos_token"] is False and cfg["add_eos_token"] is False


def _chat(hf_tok, messages, **kw):
    return hf_tok.apply_chat_template(messages, tokenize=False, **kw)


def test_chat_template_without_system(hf_tok):
    msgs = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "你好！"}]
    assert _chat(hf_tok, msgs) == (
        "<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\n你好！<|im_end|>\n"
    )


def test_chat_template_with_system(hf_tok):
    msgs = [{"role": "system", "content": "You are MiniMind."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "<think>greet</think><answer>hello</answer>"}]
    assert _chat(hf_tok, msgs) == (
        "<|im_start|>system\nYou are MiniMind.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n<think>greet</think><answer>hello</answer><|im_end|>\n"
    )


def test_chat_template_multi_turn(hf_tok):
    msgs = [{"role": "user", "content": "1+1=?"}, {"role": "assistant", "content": "2"},
            {"role": "user", "content": "再加3呢？"}, {"role": "assistant", "content": "5"}]
    assert _chat(hf_tok, msgs) == (
        "<|im_start|>user\n1+1=?<|im_end|>\n"
        "<|im_start|>assistant\n2<|im_end|>\n"
        "<|im_start|>user\n再加3呢？<|im_end|>\n"
        "<|im_start|>assistant\n5<|im_end|>\n"
    )


def test_chat_template_generation_prompt(hf_tok):
    msgs = [{"role": "user", "content": "hi"}]
    assert _chat(hf_tok, msgs, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    # Token level: the rendered prompt ends with "<|im_start|>assistant\n".
    ids = hf_tok.encode(_chat(hf_tok, msgs, add_generation_prompt=True))
    assert ids[0] == 1 and ids.count(1) == 2 and ids.count(2) == 1


def test_chat_template_rejects_unknown_role(hf_tok):
    with pytest.raises(Exception, match="Unsupported chat role"):
        _chat(hf_tok, [{"role": "function", "content": "x"}])


def test_no_token_spans_two_cjk_chars(raw_tok):
    cjk_tokens = 0
    for idx in range(raw_tok.get_vocab_size()):
        piece = raw_tok.decode([idx], skip_special_tokens=False)
        n = len(CJK_RE.findall(piece))
        assert n <= 1, f"token {idx} {piece!r} spans {n} CJK characters"
        cjk_tokens += n
    assert cjk_tokens > 20  # sanity: whole characters did get merged


def test_split_cjk_off_allows_phrase_merges(tiny_corpus_path, tmp_path):
    # The flag matters: without it the same corpus yields multi-character tokens.
    tok = Tokenizer.from_file(os.path.join(
        train_tokenizer(iter_texts(tiny_corpus_path), str(tmp_path), vocab_size=600, split_cjk=False, show_progress=False),
        "tokenizer.json"))
    pieces = [tok.decode([i], skip_special_tokens=False) for i in range(tok.get_vocab_size())]
    assert any(len(CJK_RE.findall(p)) >= 2 for p in pieces)


def test_digits_are_single_tokens(raw_tok, hf_tok):
    for idx in range(raw_tok.get_vocab_size()):
        piece = raw_tok.decode([idx], skip_special_tokens=False)
        if any(ch.isdigit() for ch in piece):
            assert len(piece) == 1, f"token {idx} {piece!r} holds more than a digit"
    assert hf_tok.convert_ids_to_tokens(hf_tok.encode("12345")) == list("12345")


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}:3:")):
        train_tokenizer(iter_texts(str(path)), str(tmp_path / "out"), vocab_size=300, show_progress=False)

    path.write_text('{"text": "fine"}\n{"content": "no text field"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2:")):
        train_tokenizer(iter_texts(str(path)), str(tmp_path / "out"), vocab_size=300, show_progress=False)


def test_cli(tmp_path):
    data = write_jsonl(tmp_path / "corpus.jsonl", make_bilingual_corpus(200, seed=1))
    save_dir = tmp_path / "tok"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "train_tokenizer.py"), "--data_path", data,
         "--save_dir", str(save_dir), "--vocab_size", "500"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (save_dir / "tokenizer.json").is_file()
    assert (save_dir / "tokenizer_config.json").is_file()
    assert "vocab 500" in result.stdout
    assert Tokenizer.from_file(str(save_dir / "tokenizer.json")).get_vocab_size() == 500


def test_required_chars_become_single_tokens(tiny_corpus_path, tmp_path):
    # 二 and 五 share their first two UTF-8 bytes; split into bytes they differ in one byte token only
    plain_dir = train_tokenizer(iter_texts(tiny_corpus_path), str(tmp_path / "plain"), vocab_size=600,
                                show_progress=False)
    whole_dir = train_tokenizer(iter_texts(tiny_corpus_path), str(tmp_path / "whole"), vocab_size=600,
                                show_progress=False, required_chars="二五✓星期期 ")
    plain = Tokenizer.from_file(os.path.join(plain_dir, "tokenizer.json"))
    whole = Tokenizer.from_file(os.path.join(whole_dir, "tokenizer.json"))
    assert len(plain.encode("二").ids) > 1 and len(plain.encode("✓").ids) > 1  # the corpus lacks them
    for ch in "二五✓星期":
        assert len(whole.encode(ch).ids) == 1, ch
    text = "今天是星期二，不是星期五。✓ A\n星期二"
    assert whole.decode(whole.encode(text).ids) == text
    pieces = [whole.id_to_token(i) for i in whole.encode("星期二").ids]
    assert len(pieces) == 3 and whole.encode("二").ids[0] != whole.encode("五").ids[0]
    # appended after the learned merges: ids and merge order of the first tokenizer unchanged, so text whose
    # characters were whole already tokenizes alike (here: the corpus lines without the added characters)
    assert all(whole.token_to_id(t) == i for t, i in plain.get_vocab().items())
    assert whole.get_vocab_size() > plain.get_vocab_size()
    plain_merges = json.loads(plain.to_str())["model"]["merges"]
    assert json.loads(whole.to_str())["model"]["merges"][:len(plain_merges)] == plain_merges
    for line in list(iter_texts(tiny_corpus_path))[:50]:
        if not any(ch in line for ch in "二五✓星期"):
            assert whole.encode(line).ids == plain.encode(line).ids
