"""Benchmark the jsonl index and PretrainDataset on a big synthetic corpus.

Figures, not a test. Measures, for a ~1 GB pretrain jsonl:
  * index build time (one scan, validating every line) and cached re-open time,
  * process memory (RSS now and peak, MB) before/after building and while
    iterating (peak is reset between phases via /proc/self/clear_refs when the
    kernel allows it; otherwise it is the lifetime peak),
  * items/s and supervised tokens/s of ``PretrainDataset.__getitem__`` over
    random indices for ``--seconds``, unpacked and (``--packing``) packed.

Note RSS includes touched pages of memory-mapped caches (offsets, tokens);
those are file-backed and reclaimable, unlike heap.

Usage:
    python scripts/bench_dataset.py --size_mb 50 --tokenizer_dir model/
    python scripts/bench_dataset.py --path big.jsonl --packing
Prints a table and, last, one JSON line with all figures.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dataset.jsonl_index import JsonlIndex  # noqa: E402
from dataset.lm_dataset import IGNORE_INDEX, PretrainDataset  # noqa: E402
from dataset.validate import validate_pretrain  # noqa: E402


# ------------------------------------------------------------------ memory

def _proc_status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb():
    """Current resident set size in MB (psutil, else /proc, else peak)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        kb = _proc_status_kb("VmRSS")
        return kb / 1024 if kb is not None else peak_rss_mb()


def peak_rss_mb():
    """Peak RSS in MB since the last reset_peak() (or process start)."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    return kb / 1024


def reset_peak():
    """Reset the peak-RSS watermark (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------- synthetic corpus

ZH_SUBJ = ["小明", "李华", "老师", "科学家", "我们", "这座城市", "研究团队", "孩子们", "那位医生", "工程师"]
ZH_VERB = ["喜欢", "研究", "讨论", "发现了", "建造了", "记得", "解释了", "正在学习", "参观了", "写下了"]
ZH_OBJ = ["古老的历史", "新的算法", "美丽的山川", "一本好书", "天气的变化", "人工智能", "传统的节日",
          "复杂的问题", "海洋生物", "城市的交通"]
ZH_TAIL = ["。", "，这很有意思。", "，并且写了一篇文章。", "，大家都很高兴。", "，因为它很重要。"]
EN_SUBJ = ["The student", "A researcher", "My friend", "The old city", "Our team", "The engineer",
           "Every child", "The museum", "A small robot", "The river"]
EN_VERB = ["explains", "remembers", "studies", "describes", "builds", "discovers", "visits", "admires",
           "questions", "records"]
EN_OBJ = ["the history of tea", "a new algorithm", "the mountain villages", "quantum physics",
          "the weather patterns", "ancient poems", "the night sky", "a complex problem", "local markets",
          "machine learning"]


def make_lexicon(rng, n_zh_chars=3000, n_en_words=6000):
    """Zipf-weighted pseudo vocabularies, so the corpus has a realistic long tail.

    Only the hand-written word lists above would give a few hundred distinct
    words, and a 6400-token BPE would run out of merges on them (making the
    tokens/s figures unrepresentative). Chinese: real CJK code points from the
    common block; English: pseudo-words glued from syllables.
    """
    zh = [chr(0x4E00 + i) for i in rng.sample(range(0x5000), n_zh_chars)]
    syl = [a + b for a in ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
                           "st", "tr", "ch", "sh", "pl"]
           for b in ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io", "er", "an", "in", "on"]]
    en = list({"".join(rng.choices(syl, k=rng.choice([1, 2, 2, 3, 3, 4]))) for _ in range(n_en_words)})
    zipf = lambda n: [1.0 / (r + 1) for r in range(n)]  # noqa: E731
    return zh, zipf(len(zh)), en, zipf(len(en))


def synth_sentence(rng, lex):
    zh, zh_w, en, en_w = lex
    r = rng.random()
    if r < 0.25:
        return rng.choice(ZH_SUBJ) + rng.choice(ZH_VERB) + rng.choice(ZH_OBJ) + rng.choice(ZH_TAIL)
    if r < 0.5:
        return "".join(rng.choices(zh, zh_w, k=rng.randint(8, 40))) + rng.choice("。，！？")
    if r < 0.7:
        return f"{rng.choice(EN_SUBJ)} {rng.choice(EN_VERB)} {rng.choice(EN_OBJ)}."
    if r < 0.93:
        words = rng.choices(en, en_w, k=rng.randint(5, 25))
        return " ".join(words).capitalize() + rng.choice(".,!?")
    a, b = rng.randint(0, 9999), rng.randint(0, 9999)
    return f"{a} + {b} = {a + b}，计算结果是{a + b}。"


def generate_corpus(path, size_mb, seed=0):
    """Write ~size_mb MB of {"text": ...} lines, streaming (constant memory)."""
    rng = random.Random(seed)
    # Sentences come from a large random pool: composing every sentence from
    # scratch would make generation, not the code under test, the bottleneck.
    lex = make_lexicon(rng)
    pool = [synth_sentence(rng, lex) for _ in range(200_000)]
    target = size_mb * 2**20
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    t0 = time.time()
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        written = 0
        while written < target:
            text = " ".join(rng.choices(pool, k=rng.randint(3, 30)))
            line = json.dumps({"text": text}, ensure_ascii=False) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
            n += 1
    os.replace(tmp, path)
    print(f"generated {path}: {n} lines, {written / 2**20:.0f} MB in {time.time() - t0:.1f}s")


# -------------------------------------------------------------------- bench

def bench_getitem(ds, seconds, seed=0):
    """Random-index __getitem__ loop for `seconds`; returns items/s, tokens/s."""
    rng = random.Random(seed)
    n_items = n_tokens = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        item = ds[rng.randrange(len(ds))]
        n_items += 1
        n_tokens += int((item["labels"] != IGNORE_INDEX).sum())
        if n_items % 64 == 0 and time.perf_counter() >= deadline:
            break
    dt = time.perf_counter() - t0
    return {"items_per_s": n_items / dt, "tokens_per_s": n_tokens / dt, "items": n_items}


def has_tokenizer(d):
    return os.path.isfile(os.path.join(d, "tokenizer.json")) or os.path.isfile(os.path.join(d, "tokenizer_config.json"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--path", default=None, help="jsonl to use; generated there if missing "
                   "(default: <tmp>/minimind_bench/pretrain_synth_<size_mb>mb.jsonl)")
    p.add_argument("--size_mb", type=int, default=1000, help="size of the generated corpus")
    p.add_argument("--tokenizer_dir", default="model/")
    p.add_argument("--max_seq_len", type=int, default=512)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each __getitem__ loop")
    p.add_argument("--packing", action="store_true", help="also benchmark packing=True (tokenizes the whole file once)")
    p.add_argument("--rebuild", action="store_true", help="delete existing caches first so the scan is timed")
    args = p.parse_args()

    if not has_tokenizer(args.tokenizer_dir):
        p.error(f"no tokenizer in {args.tokenizer_dir!r}; pass --tokenizer_dir (e.g. one made by train_tokenizer.py)")
    path = args.path or os.path.join(tempfile.gettempdir(), "minimind_bench", f"pretrain_synth_{args.size_mb}mb.jsonl")
    if not os.path.exists(path):
        generate_corpus(path, args.size_mb)
    if args.rebuild and os.path.isdir(path + ".idx"):
        shutil.rmtree(path + ".idx")

    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.tokenizer_dir)

    res = {"path": path, "file_mb": os.path.getsize(path) / 2**20, "max_seq_len": args.max_seq_len,
           "vocab": len(tok)}
    rows = []

    def add(*new_rows):
        # Print as soon as measured: a long run that gets killed still reports.
        for k, v in new_rows:
            print(f"[bench] {k}: {v}", flush=True)
        rows.extend(new_rows)

    # --- index: scan (or cache hit) then a cached re-open
    peak_ok = reset_peak()
    res["rss_before_mb"] = rss_mb()
    t0 = time.perf_counter()
    index = JsonlIndex(path, validate=validate_pretrain, show_progress=True)
    res["index_build_s"] = time.perf_counter() - t0
    res["index_from_cache"] = index.from_cache
    res["n_lines"] = len(index)
    res["rss_after_index_mb"] = rss_mb()
    res["peak_rss_index_mb"] = peak_rss_mb()
    t0 = time.perf_counter()
    index2 = JsonlIndex(path, validate=validate_pretrain)
    res["index_cached_open_s"] = time.perf_counter() - t0
    assert index2.from_cache
    del index2
    mb_per_s = res["file_mb"] / res["index_build_s"]
    add(
        ("lines", f"{len(index):,}"),
        ("file size", f"{res['file_mb']:.0f} MB"),
        ("index build" + (" (cache hit!)" if index.from_cache else " (scan)"),
         f"{res['index_build_s']:.1f} s ({mb_per_s:.0f} MB/s, {len(index) / res['index_build_s']:,.0f} lines/s)"),
        ("index cached re-open", f"{res['index_cached_open_s'] * 1000:.1f} ms"),
        ("RSS before / after index", f"{res['rss_before_mb']:.0f} / {res['rss_after_index_mb']:.0f} MB"),
        ("peak RSS while indexing", f"{res['peak_rss_index_mb']:.0f} MB"),
    )

    # --- unpacked __getitem__
    ds = PretrainDataset(path, tok, max_seq_len=args.max_seq_len)
    reset_peak()
    r = bench_getitem(ds, args.seconds)
    r["rss_mb"], r["peak_rss_mb"] = rss_mb(), peak_rss_mb()
    res["unpacked"] = r
    add(("unpacked __getitem__", f"{r['items_per_s']:,.0f} items/s, {r['tokens_per_s']:,.0f} tokens/s"),
        ("  RSS now / peak while iterating", f"{r['rss_mb']:.0f} / {r['peak_rss_mb']:.0f} MB"))
    del ds

    # --- packed
    if args.packing:
        reset_peak()
        t0 = time.perf_counter()
        ds = PretrainDataset(path, tok, max_seq_len=args.max_seq_len, packing=True, show_progress=True)
        build_s = time.perf_counter() - t0
        pk = {"token_cache_s": build_s, "n_tokens": ds.n_tokens, "windows": len(ds),
              "token_cache_mb": os.path.getsize(ds._token_path) / 2**20,
              "peak_rss_build_mb": peak_rss_mb()}
        reset_peak()
        pk.update(bench_getitem(ds, args.seconds))
        pk["rss_mb"], pk["peak_rss_mb"] = rss_mb(), peak_rss_mb()
        res["packed"] = pk
        add(("packed token cache", f"{build_s:.1f} s, {ds.n_tokens:,} tokens "
             f"({pk['token_cache_mb']:.0f} MB), peak RSS {pk['peak_rss_build_mb']:.0f} MB"),
            ("packed __getitem__", f"{pk['items_per_s']:,.0f} items/s, {pk['tokens_per_s']:,.0f} tokens/s"),
            ("  RSS now / peak while iterating", f"{pk['rss_mb']:.0f} / {pk['peak_rss_mb']:.0f} MB"))

    if not peak_ok:
        add(("note", "peak RSS could not be reset: peaks are lifetime peaks"))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
