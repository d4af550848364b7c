"""Data that used to crash or stall training: lone surrogates, huge lines, chats ending with a user turn.

Each test here fails on the code before the fix:
  * surrogates: the datasets opened fine and the tokenizer raised TypeError on read;
  * validator_name: its key changed per process (memory address of a generator
    expression) yet ignored edits of the helpers a validator calls;
  * long lines: a read tokenized the whole line (tracemalloc peak ~100x the line);
  * chats ending with a user turn: no warning, nothing counted.
"""

import json
import os
import time
import tracemalloc
import warnings

import numpy as np
import pytest

from conftest import make_bilingual_corpus
from dataset import bounded_tokenize, chat_tokens, lm_dataset, validate
from dataset.jsonl_files import iter_texts
from dataset.jsonl_index import JsonlIndex, validator_name
from dataset.lm_dataset import IGNORE_INDEX, DPODataset, PretrainDataset, SFTDataset, chat_ids_and_labels

BOS, EOS = 1, 2


@pytest.fixture(scope="module")
def tok(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def write_raw(path, lines):
    """Lines given as bytes (written as is) or objects (json, UTF-8)."""
    with open(path, "wb") as f:
        for line in lines:
            if not isinstance(line, bytes):
                line = json.dumps(line, ensure_ascii=False).encode("utf-8")
            f.write(line + b"\n")
    return str(path)


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


def long_text(n_chars, seed=0):
    """Natural-looking bilingual text with digits, emoji and chat/think markers (added tokens)."""
    lines = make_bilingual_corpus(n_lines=400, seed=seed)
    out, size, i = [], 0, 0
    while size < n_chars:
        line = lines[i % len(lines)]
        out.append(line)
        size += len(line) + 1
        i += 1
    return (" " if seed % 2 else "\n").join(out)[:n_chars]


# ------------------------------------------------------------ lone surrogates

# The same lone high surrogate U+D800, once as a JSON escape and once as raw
# (CESU-style) bytes, which json.loads(bytes) accepts ('surrogatepass').
SURROGATE_FORMS = {"escape": b"\\ud800", "raw_bytes": b"\xed\xa0\x80"}


def with_surrogate(template, form):
    """A jsonl line (bytes): ``template`` as JSON with its @@ replaced by a lone surrogate."""
    return json.dumps(template, ensure_ascii=False).encode("utf-8").replace(b"@@", SURROGATE_FORMS[form])


@pytest.mark.parametrize("form", SURROGATE_FORMS)
def test_surrogate_pretrain_caught_up_front(tok, tmp_path, form):
    path = write_raw(tmp_path / "pt.jsonl", [{"text": "a"}, with_surrogate({"text": "a @@ b"}, form), {"text": "c"}])
    with pytest.raises(ValueError) as e:
        PretrainDataset(path, tok, max_seq_len=16)
    msg = str(e.value)
    assert f"{os.path.abspath(path)}:2: " in msg and "lone surrogate" in msg and "'text'" in msg
    msg.encode("utf-8")  # the message itself is printable
    with pytest.warns(UserWarning, match="skipped 1 bad line"):
        ds = PretrainDataset(path, tok, max_seq_len=16, skip_bad_lines=True)
    assert len(ds) == 2 and ds.n_bad == 1
    for i in range(len(ds)):  # every kept sample tokenizes
        ds[i]

    # Packing builds its token cache from the same validated index.
    with pytest.warns(UserWarning):
        packed = PretrainDataset(path, tok, max_seq_len=4, packing=True, skip_bad_lines=True)
    stream = [BOS] + tok("a", add_special_tokens=False)["input_ids"] + [EOS]
    stream += [BOS] + tok("c", add_special_tokens=False)["input_ids"] + [EOS]
    assert packed.n_tokens == len(stream)
    with pytest.raises(ValueError, match="lone surrogate"):
        PretrainDataset(path, tok, max_seq_len=4, packing=True)


@pytest.mark.parametrize("form", SURROGATE_FORMS)
def test_surrogate_sft_and_dpo_name_the_message(tok, tmp_path, form):
    good = {"conversations": [u("hi"), a("hello")]}
    bad = with_surrogate({"conversations": [u("hi"), a("x @@ y")]}, form)
    path = write_raw(tmp_path / "sft.jsonl", [good, bad, good])
    with pytest.raises(ValueError) as e:
        SFTDataset(path, tok, max_seq_len=32)
    assert f"{os.path.abspath(path)}:2: " in str(e.value)
    assert "lone surrogate" in str(e.value) and "conversations[1] ('assistant')" in str(e.value)
    with pytest.warns(UserWarning, match="skipped 1 bad line"):
        ds = SFTDataset(path, tok, max_seq_len=32, skip_bad_lines=True)
    assert len(ds) == 2 and [ds[i]["input_ids"].shape for i in range(2)]

    pair = {"chosen": [u("q"), a("yes")], "rejected": [u("q"), a("no")]}
    bad = with_surrogate({"chosen": [u("q"), a("yes")], "rejected": [u("q"), a("n@@o")]}, form)
    path = write_raw(tmp_path / "dpo.jsonl", [pair, pair, bad])
    with pytest.raises(ValueError) as e:
        DPODataset(path, tok, max_seq_len=32)
    assert f"{os.path.abspath(path)}:3: " in str(e.value)
    assert "lone surrogate" in str(e.value) and "rejected[1] ('assistant')" in str(e.value)
    with pytest.warns(UserWarning):
        ds = DPODataset(path, tok, max_seq_len=32, skip_bad_lines=True)
    assert len(ds) == 2 and ds.n_bad == 1 and ds[1]["chosen_input_ids"].shape == (32,)


@pytest.mark.parametrize("form", SURROGATE_FORMS)
def test_surrogate_iter_texts(tmp_path, form):
    path = write_raw(tmp_path / "corpus.jsonl", [{"text": "ok"}, b"", with_surrogate({"text": "@@"}, form)])
    it = iter_texts(path)
    assert next(it) == "ok"
    with pytest.raises(ValueError, match=r"corpus\.jsonl:3: lone surrogate .*'text'"):
        next(it)


def test_valid_pairs_and_astral_characters_pass(tok, tmp_path):
    # A surrogate *pair* escape is one valid character (emoji), not an error.
    path = write_raw(tmp_path / "pt.jsonl", [b'{"text": "\\ud83d\\ude00 ok"}', {"text": "𠀀 \U0001F680"}])
    ds = PretrainDataset(path, tok, max_seq_len=16)
    assert len(ds) == 2 and ds.n_bad == 0 and ds[0]["input_ids"][0] == BOS


# ------------------------------------------------- index cache key (validator)

def _exec_validator(src):
    ns = {"__name__": "fake_module"}
    exec(compile(src, "<validator>", "exec"), ns)
    return ns["validate"]


def test_validator_name_is_stable_and_covers_helpers():
    src = ('LIMIT = 3\n'
           'def helper(x):\n    if len(x) > LIMIT: raise ValueError("long")\n'
           'def validate(obj):\n    helper(obj)\n    return any(k == "a" for k in obj)\n')
    # The same code compiled twice (as in two processes): same key. The
    # generator expression is a nested code object whose repr has an address.
    assert validator_name(_exec_validator(src)) == validator_name(_exec_validator(src))
    # Editing a helper the validator calls, or a constant it reads, changes the key.
    assert validator_name(_exec_validator(src.replace("> LIMIT", ">= LIMIT"))) != validator_name(_exec_validator(src))
    assert validator_name(_exec_validator(src.replace("LIMIT = 3", "LIMIT = 4"))) != validator_name(_exec_validator(src))
    # and the SFT validator (which has a generator expression) keys the same every time
    assert validator_name(validate.validate_sft) == validator_name(validate.validate_sft)


def test_sft_index_cache_reused(tok, tmp_path, monkeypatch):
    path = write_raw(tmp_path / "sft.jsonl", [{"conversations": [u("hi"), a("hello")]}])
    SFTDataset(path, tok)
    # A fresh process recompiles validate_sft's generator expression at a new
    # address; simulate that by compiling the module's source again.
    import inspect
    fresh = {"__name__": validate.__name__}
    exec(compile(inspect.getsource(validate), validate.__file__, "exec"), fresh)
    assert fresh["validate_sft"] is not validate.validate_sft
    assert JsonlIndex(path, validate=fresh["validate_sft"]).from_cache


# ---------------------------------------------------------------- long lines

def _peak_during(fn):
    tracemalloc.start()
    try:
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak, dt


LONG_MB = 3


@pytest.mark.parametrize("kind", ["pretrain", "sft", "dpo"])
def test_long_line_read_is_bounded(tok, tmp_path, kind):
    text = long_text(LONG_MB * 1024 * 1024, seed=1)
    if kind == "pretrain":
        cls, rows = PretrainDataset, [{"text": "short"}, {"text": text}]
    elif kind == "sft":
        cls, rows = SFTDataset, [{"conversations": [u("hi"), a("ok")]},
                                 {"conversations": [u("summarise"), a(text), u("more"), a(text)]}]
    else:
        cls, rows = DPODataset, [{"chosen": [u("q"), a("y")], "rejected": [u("q"), a("n")]},
                                 {"chosen": [u("q"), a(text)], "rejected": [u("q"), a("short")]}]
    path = write_raw(tmp_path / f"{kind}.jsonl", rows)
    line_bytes = os.path.getsize(path)
    ds = cls(path, tok, max_seq_len=96)
    ds[0]  # warm up (file handle, tokenizer caches)
    _, parse_peak, _ = _peak_during(lambda: ds.index[1])  # reading + json-parsing the line: O(line), unavoidable
    item, peak, dt = _peak_during(lambda: ds[1])
    print(f"{kind}: {line_bytes / 1e6:.1f} MB line, parse peak {parse_peak / 1e6:.0f} MB, "
          f"read peak {peak / 1e6:.0f} MB, {dt:.2f}s")
    # Before the fix the whole line was tokenized: millions of ids as Python
    # ints (+ offsets as tuples for chats). Measured on this 3M-character line:
    # tracemalloc peaks of 77 / 582 / 301 MB and 15 / 56 / 13 s per read for
    # pretrain / SFT / DPO. Now: the parsed line, for chats one rendering of
    # it, and the tokens of a bounded prefix.
    budget = parse_peak + 4e6 if kind == "pretrain" else 2 * parse_peak + 4e6
    assert peak < budget, f"read peak {peak / 1e6:.0f} MB (parsing alone: {parse_peak / 1e6:.0f} MB)"
    assert dt < 3.0, f"read took {dt:.1f}s"
    assert all(v.shape == (96,) for v in item.values())
    if kind != "pretrain":
        assert any((v != IGNORE_INDEX).any() for k, v in item.items() if "labels" in k)


def _exact_pretrain(tok, text, L):
    ids = ([BOS] + tok(text, add_special_tokens=False)["input_ids"] + [EOS])[:L]
    return ids + [0] * (L - len(ids))


@pytest.mark.parametrize("L", [1, 7, 96, 300])
def test_long_pretrain_sample_unchanged(tok, tmp_path, L):
    texts = [long_text(60_000, seed=s) for s in (0, 1)] + ["x" * 5000, " " * 3000 + "a", "short"]
    path = write_raw(tmp_path / "pt.jsonl", [{"text": t} for t in texts])
    ds = PretrainDataset(path, tok, max_seq_len=L)
    for i, t in enumerate(texts):
        assert ds[i]["input_ids"].tolist() == _exact_pretrain(tok, t, L), i


def test_encode_prefix_grows_the_cut_when_needed(tok, monkeypatch):
    # An underestimated bound must not change the result, only cost retries.
    text = long_text(40_000)
    full = tok(text, add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(bounded_tokenize, "max_token_chars", lambda t: 1)
    for n in (1, 50, 2000):
        assert bounded_tokenize.encode_prefix(tok, text, n) == full[:n]


def _chat_cases():
    big, big2 = long_text(50_000, seed=0), long_text(30_000, seed=1)
    return [
        [u("hi"), a(big)],                                   # long reply, cut inside it
        [u(big), a("ok")],                                   # long prompt: reply dropped
        [u("q"), a(big2), u("again"), a(big)],               # several long replies
        [{"role": "system", "content": "s"}] + [m for k in range(150) for m in (u(f"q{k}"), a(f"a{k} " * 60))],
        [a(big), u("b"), a("c")],                            # chat opening with a (long) reply
        [a("x" * 40_000)],                                   # periodic content opening the chat
    ]


@pytest.mark.parametrize("L", [5, 96, 512])
@pytest.mark.parametrize("case", range(6))
def test_long_chat_sample_unchanged(tok, L, case):
    msgs = _chat_cases()[case]
    for only_last in (False, True):
        # (the bounded path is taken, not its exact fallback)
        assert chat_tokens._chat_prefix_ids_and_labels(tok, msgs, only_last, L) is not None
        ids, labels = chat_ids_and_labels(tok, msgs, only_last=only_last)
        got_ids, got_labels = chat_ids_and_labels(tok, msgs, only_last=only_last, max_tokens=L)
        assert len(got_ids) == len(got_labels) == min(L, len(ids))
        assert got_ids.tolist() == ids[:L].tolist()
        assert got_labels.tolist() == labels[:L].tolist()


def test_long_sft_and_dpo_datasets_unchanged(tok, tmp_path):
    big = long_text(50_000)
    conv = [u("q"), a(big), u("more"), a("short")]
    path = write_raw(tmp_path / "sft.jsonl", [{"conversations": conv}])
    L = 200
    item = SFTDataset(path, tok, max_seq_len=L)[0]
    ids, labels = chat_ids_and_labels(tok, conv)
    assert item["input_ids"].tolist() == ids[:L].tolist() and item["labels"].tolist() == labels[:L].tolist()

    pair = {"chosen": [u("q"), a(big)], "rejected": [u("q"), a("no")]}
    item = DPODataset(write_raw(tmp_path / "dpo.jsonl", [pair]), tok, max_seq_len=L)[0]
    ids, labels = chat_ids_and_labels(tok, pair["chosen"], only_last=True)
    assert item["chosen_input_ids"].tolist() == ids[:L].tolist()
    assert item["chosen_labels"].tolist() == labels[:L].tolist()


def test_split_for_tokenizing(tok):
    added = sorted(tok.get_added_vocab())
    text = long_text(300_000, seed=1)
    pieces = bounded_tokenize.split_for_tokenizing(text, added, chunk=4096)
    assert "".join(pieces) == text and len(pieces) > 50
    assert all(len(p) <= 4096 + bounded_tokenize.CUT_MARGIN for p in pieces)
    pos = 0
    for p in pieces[:-1]:
        pos += len(p)
        assert bounded_tokenize._added_token_at(text, pos, added) == -1  # never through <|im_start|> etc.
    # Cut at pre-token boundaries: piecewise tokens == whole-text tokens.
    whole = tok(text, add_special_tokens=False)["input_ids"]
    assert sum(tok(pieces, add_special_tokens=False)["input_ids"], []) == whole

    # No safe place at all: a hard cut, still lossless, not inside an added token.
    blob = ("<|im_end|>" + "a" * 997) * 20
    pieces = bounded_tokenize.split_for_tokenizing(blob, added, chunk=1000, window=50)
    assert "".join(pieces) == blob and len(pieces) > 10
    assert all(p.count("<|im_end|>") == blob[sum(map(len, pieces[:k])):][:len(p)].count("<|im_end|>")
               for k, p in enumerate(pieces))


def test_packing_keeps_all_of_a_long_document(tok, tmp_path, monkeypatch):
    monkeypatch.setattr(lm_dataset, "PACK_CHUNK_CHARS", 4096)
    monkeypatch.setattr(lm_dataset, "PACK_BATCH_CHARS", 20_000)
    docs = ["short one", long_text(200_000, seed=1), long_text(50_000, seed=0), "end"]
    path = write_raw(tmp_path / "pt.jsonl", [{"text": d} for d in docs])
    n_pieces = []
    real_split = bounded_tokenize.split_for_tokenizing

    def spy(text, *args, **kwargs):
        pieces = real_split(text, *args, **kwargs)
        n_pieces.append(len(pieces))
        return pieces

    monkeypatch.setattr(lm_dataset, "split_for_tokenizing", spy)
    ds = PretrainDataset(path, tok, max_seq_len=64, packing=True)
    assert sorted(n_pieces) == [12, 49]  # the two long documents went in pieces of ~4096 characters
    stream = []
    for d in docs:
        stream += [BOS] + tok(d, add_special_tokens=False)["input_ids"] + [EOS]
    assert ds.n_tokens == len(stream)
    got = np.fromfile(ds._token_path, dtype=ds._token_dtype()).tolist()
    assert got == stream  # every token of the long documents, exactly as whole-document tokenization


# ----------------------------------------------------- SFT ending with a user

def test_sft_ending_with_user_is_counted_and_warned(tok, tmp_path):
    good = {"conversations": [u("hi"), a("hello")]}
    open_end = {"conversations": [u("hi"), a("hello"), u("and then?")]}
    path = write_raw(tmp_path / "sft.jsonl", [good, open_end, good, open_end, good])
    for _ in range(2):  # scanned, then from the cache: same warning
        with pytest.warns(UserWarning) as rec:
            ds = SFTDataset(path, tok, max_seq_len=32)
        msgs = [str(w.message) for w in rec if "flagged" in str(w.message)]
        assert len(msgs) == 1, msgs
        assert "2 of 5 line(s)" in msgs[0] and "ends with a 'user' turn" in msgs[0]
        assert "lines 2, 4" in msgs[0]
        assert len(ds) == 5 and ds.n_flagged == 2 and ds.n_bad == 0
        assert ds.index.flagged_examples[0].startswith(f"{os.path.abspath(path)}:2: conversation ends with a 'user'")
    # Still a usable sample: the earlier reply is supervised, the final user turn is not.
    item = ds[1]
    assert (item["labels"] != IGNORE_INDEX).sum() == len(tok("hello", add_special_tokens=False)["input_ids"]) + 1


def test_clean_sft_data_gives_no_warning(tok, tmp_path):
    path = write_raw(tmp_path / "sft.jsonl", [{"conversations": [u("hi"), a("hello")]}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = SFTDataset(path, tok)
    assert ds.n_flagged == 0


def test_pretrain_read_error_names_the_line(tok, tmp_path, monkeypatch):
    path = write_raw(tmp_path / "pt.jsonl", [{"text": "a"}, {"text": "b"}])
    ds = PretrainDataset(path, tok, max_seq_len=8)

    def boom(*args, **kwargs):
        raise TypeError("TextEncodeInput must be ...")

    monkeypatch.setattr(lm_dataset, "encode_prefix", boom)
    with pytest.raises(ValueError, match=r"pt\.jsonl:2: TypeError"):
        ds[1]
