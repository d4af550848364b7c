"""JsonlIndex: offsets, validation errors with file:line, caching, memory, workers."""

import json
import os
import pickle
import random
import tracemalloc

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import dataset.jsonl_index as jsonl_index
from dataset.jsonl_index import JsonlIndex


def write_lines(path, lines):
    """Write raw text lines (already JSON or deliberately broken)."""
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return str(path)


def require_text(obj):
    if "text" not in obj:
        raise ValueError("missing field 'text'")
    if not isinstance(obj["text"], str):
        raise ValueError(f"field 'text' must be a string, got {type(obj['text']).__name__}")


@pytest.fixture
def small_file(tmp_path):
    objs = [{"id": i, "text": f"行 {i} line " + "x" * (i % 7)} for i in range(50)]
    path = write_lines(tmp_path / "small.jsonl", [json.dumps(o, ensure_ascii=False) for o in objs])
    return path, objs


def test_offsets_and_items(small_file):
    path, objs = small_file
    idx = JsonlIndex(path)
    assert len(idx) == len(objs)
    # Expected offsets computed independently from the raw bytes.
    with open(path, "rb") as f:
        data = f.read()
    expected, pos = [], 0
    for raw in data.splitlines(keepends=True):
        expected.append(pos)
        pos += len(raw)
    assert idx.offsets.tolist() == expected
    assert idx.offsets.dtype == np.int64
    for i in [0, 1, 17, 49, -1]:
        assert idx[i] == objs[i]
    assert idx.line_number(10) == 11
    with pytest.raises(IndexError):
        idx[50]


def test_no_trailing_newline(tmp_path):
    path = tmp_path / "nonl.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}', encoding="utf-8")
    idx = JsonlIndex(str(path))
    assert [idx[i]["a"] for i in range(len(idx))] == [1, 2]


def test_empty_lines_ignored(tmp_path):
    path = write_lines(tmp_path / "blank.jsonl", ['{"a": 1}', "", "   ", '{"a": 2}', "\t", '{"a": 3}', ""])
    idx = JsonlIndex(path)
    assert len(idx) == 3
    assert [idx[i]["a"] for i in range(3)] == [1, 2, 3]
    assert [idx.line_number(i) for i in range(3)] == [1, 4, 6]
    assert idx.n_bad == 0  # blank lines are not "bad", just not data


def test_cache_reused_and_rebuilt(small_file, monkeypatch):
    path, objs = small_file
    first = JsonlIndex(path)
    assert not first.from_cache
    assert os.path.isdir(path + ".idx")  # cached beside the data

    # Second open must not rescan: make scanning impossible.
    def no_scan(self):
        raise AssertionError("rescanned although the cache is valid")

    with monkeypatch.context() as m:
        m.setattr(JsonlIndex, "_scan", no_scan)
        second = JsonlIndex(path)
        assert second.from_cache
        assert second.offsets.tolist() == first.offsets.tolist()
        assert second[7] == objs[7]

    # Appending changes size -> rebuild.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": 50, "text": "new"}) + "\n")
    third = JsonlIndex(path)
    assert not third.from_cache and len(third) == 51 and third[50]["text"] == "new"

    # Same size, different content and mtime -> rebuild too.
    with open(path, "r+b") as f:
        f.seek(third.offsets[50])
        f.write(json.dumps({"id": 50, "text": "NEW"}).encode())
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    fourth = JsonlIndex(path)
    assert not fourth.from_cache and fourth[50]["text"] == "NEW"
    assert JsonlIndex(path).from_cache


def test_cache_depends_on_validator(small_file):
    path, _ = small_file
    JsonlIndex(path)
    # A different validator must not reuse an index built without it.
    assert not JsonlIndex(path, validate=require_text).from_cache
    assert JsonlIndex(path, validate=require_text).from_cache


def test_cache_falls_back_when_data_dir_readonly(small_file, tmp_path, monkeypatch):
    path, objs = small_file
    data_dir = os.path.dirname(os.path.abspath(path))
    real = jsonl_index._dir_is_writable
    # Running as root makes chmod useless, so simulate a read-only data folder.
    monkeypatch.setattr(jsonl_index, "_dir_is_writable", lambda d: d != data_dir and real(d))
    cache = tmp_path / "cache"
    idx = JsonlIndex(path, cache_dir=str(cache))
    assert idx.cache_path.startswith(str(cache))
    assert not os.path.exists(path + ".idx")
    assert JsonlIndex(path, cache_dir=str(cache)).from_cache
    assert idx[3] == objs[3]


def test_malformed_json_reports_file_and_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", ['{"text": "ok"}', "", '{"text": "broken"', '{"text": "ok"}'])
    with pytest.raises(ValueError) as e:
        JsonlIndex(path)
    assert f"{os.path.abspath(path)}:3:" in str(e.value)
    assert "malformed JSON" in str(e.value)


def test_non_object_line(tmp_path):
    path = write_lines(tmp_path / "list.jsonl", ['{"text": "ok"}', '[1, 2]'])
    with pytest.raises(ValueError, match=r"list\.jsonl:2: expected a JSON object"):
        JsonlIndex(path)


def test_missing_field_and_wrong_type(tmp_path):
    p1 = write_lines(tmp_path / "missing.jsonl", ['{"text": "a"}', '{"txt": "b"}'])
    with pytest.raises(ValueError) as e:
        JsonlIndex(p1, validate=require_text)
    assert str(e.value) == f"{os.path.abspath(p1)}:2: missing field 'text'"

    p2 = write_lines(tmp_path / "type.jsonl", ['{"text": "a"}', '{"text": "b"}', '{"text": 3}'])
    with pytest.raises(ValueError) as e:
        JsonlIndex(p2, validate=require_text)
    assert str(e.value) == f"{os.path.abspath(p2)}:3: field 'text' must be a string, got int"


def test_skip_bad_lines_counts(tmp_path):
    lines = ['{"text": "a"}', "{oops", '{"text": "b"}', '{"text": 1}', "", '{"no": 1}', '{"text": "c"}']
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    with pytest.warns(UserWarning, match="skipped 3 bad line"):
        idx = JsonlIndex(path, validate=require_text, skip_bad_lines=True)
    assert len(idx) == 3 and idx.n_bad == 3
    assert [idx[i]["text"] for i in range(3)] == ["a", "b", "c"]
    assert [idx.line_number(i) for i in range(3)] == [1, 3, 7]
    assert [b.split(": ")[0].rsplit(":", 1)[1] for b in idx.bad_examples] == ["2", "4", "6"]

    # The cached (filtered) index must not silently serve a strict caller.
    with pytest.raises(ValueError, match=r"mixed\.jsonl:2: malformed JSON"):
        JsonlIndex(path, validate=require_text)
    with pytest.warns(UserWarning):
        again = JsonlIndex(path, validate=require_text, skip_bad_lines=True)
    assert again.from_cache and again.n_bad == 3


def test_big_file_constant_memory(tmp_path):
    rng = random.Random(0)
    # A pool of varied texts (building every line char by char is too slow).
    pool = ["".join(rng.choice("abcdefghij 你好世界") for _ in range(rng.randint(100, 400))) for _ in range(200)]
    path = tmp_path / "big.jsonl"
    objs_written = 0
    with open(path, "w", encoding="utf-8") as f:
        # ~20 MB of ~500-byte lines, written without keeping them.
        while f.tell() < 20 * 1024 * 1024:
            f.write(json.dumps({"id": objs_written, "text": rng.choice(pool)}, ensure_ascii=False) + "\n")
            objs_written += 1
    size = os.path.getsize(path)

    tracemalloc.start()
    try:
        idx = JsonlIndex(str(path), validate=require_text, use_cache=False)
        for i in random.Random(1).sample(range(len(idx)), 200):
            idx[i]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(idx) == objs_written
    # Offsets cost 8 bytes/line (~0.4 MB here); the file is 20 MB.
    assert peak < size / 10, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"

    with open(path, "rb") as f:
        lines = f.read().splitlines()
    for i in random.Random(2).sample(range(len(idx)), 100):
        assert idx[i] == json.loads(lines[i])


class IdsDataset(Dataset):
    def __init__(self, index):
        self.index = index

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        return self.index[i]["id"]


def test_pickle_and_dataloader_workers(small_file):
    path, objs = small_file
    # A lambda validator cannot be pickled; the index must still be.
    idx = JsonlIndex(path, validate=lambda o: None)
    idx[0]  # parent opens its file handle before workers fork
    clone = pickle.loads(pickle.dumps(idx))
    assert len(clone) == len(idx) and clone[5] == objs[5]

    # Cached index (memmapped offsets) pickles too, without copying the array.
    cached = JsonlIndex(path, validate=lambda o: None)
    assert cached.from_cache
    assert pickle.loads(pickle.dumps(cached))[9] == objs[9]

    loader = DataLoader(IdsDataset(idx), batch_size=4, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(0))
    seen = sorted(int(x) for batch in loader for x in batch)
    assert seen == list(range(len(objs)))
    assert idx[3] == objs[3]  # the parent's handle still works afterwards
