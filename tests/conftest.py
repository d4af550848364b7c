"""Shared pytest setup: repo root on sys.path and a tiny trained tokenizer."""

import json
import os
import random
import runpy
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tests import top-level modules (train_tokenizer, model, ...) directly; make
# that work whether or not a pytest.ini / pyproject sets up the path.
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def make_bilingual_corpus(n_lines=400, seed=0):
    """Deterministic little corpus of Chinese, English, numbers and emoji.

    Built from small hand-written word lists so it has enough repetition for
    BPE to learn merges, plus a few lines using the chat/reasoning markers.
    """
    rng = random.Random(seed)
    zh_names = ["小明", "李华", "王芳", "张伟", "陈静", "刘洋", "赵雷", "孙悦"]
    zh_places = ["北京", "上海", "杭州", "成都", "西安", "广州", "南京", "武汉"]
    zh_things = ["苹果", "书本", "电脑", "自行车", "咖啡", "面包", "雨伞", "手机", "茶叶", "钢笔"]
    en_names = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Henry"]
    en_things = ["apples", "books", "green tea", "bicycles", "music", "mountains", "computers", "gardens"]
    en_verbs = ["likes", "reads about", "buys", "talks about", "studies", "paints", "remembers", "explains"]
    zh_weather = ["晴朗", "下雨", "刮风", "多云", "寒冷", "炎热"]
    en_adjs = ["quiet", "bright", "little", "famous", "friendly", "ancient"]
    emoji = ["😀", "🚀", "🍎", "🎉", "❤️", "🐱"]

    lines = []
    for i in range(n_lines):
        kind = i % 6
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        if kind == 0:
            text = f"{rng.choice(zh_names)}住在{rng.choice(zh_places)}，他每天买{a}个{rng.choice(zh_things)}。"
        elif kind == 1:
            text = f"{rng.choice(en_names)} {rng.choice(en_verbs)} {rng.choice(en_things)} every day. {rng.choice(emoji)}"
        elif kind == 2:
            text = f"{a} + {b} = {a + b}\n计算结果是{a + b}。The answer is {a + b}."
        elif kind == 3:
            text = (f"<|im_start|>user\n{rng.choice(zh_places)}在哪里？<|im_end|>\n"
                    f"<|im_start|>assistant\n<think>想一想</think><answer>在中国</answer><|im_end|>")
        elif kind == 4:
            text = (f"今天{rng.choice(zh_places)}的天气{rng.choice(zh_weather)}，"
                    f"The {rng.choice(en_adjs)} city of {rng.choice(zh_places)} is {rng.choice(en_adjs)} today.")
        else:
            text = f"{rng.choice(zh_names)} and {rng.choice(en_names)} 一起分享{rng.choice(zh_things)} {rng.choice(emoji)}<|endoftext|>"
        lines.append(text)
    return lines


def write_jsonl(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def tiny_corpus_path(tmp_path_factory):
    """Path of the small bilingual jsonl corpus."""
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "tiny.jsonl", make_bilingual_corpus())


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, tiny_corpus_path):
    """Directory with a ~600-token tokenizer trained on the tiny corpus."""
    from dataset.jsonl_files import iter_texts
    from model.tokenizer_train import train_tokenizer

    save_dir = str(tmp_path_factory.mktemp("tokenizer"))
    return train_tokenizer(iter_texts(tiny_corpus_path), save_dir, vocab_size=600, show_progress=False)


@pytest.fixture(scope="session")
def no_tool_tokenizer_dir(tmp_path_factory, tiny_tokenizer_dir):
    """The tiny tokenizer with its tool tokens renamed: a MiniMind2-style folder (ids 0-2 as ours, no tool tags)."""
    folder = tmp_path_factory.mktemp("no_tool_tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        text = open(os.path.join(tiny_tokenizer_dir, name), encoding="utf-8").read()
        for tag in ("tool_call", "tool_response"):
            text = text.replace(f"<{tag}>", f"<reserved_{tag}>").replace(f"</{tag}>", f"</reserved_{tag}>")
        (folder / name).write_text(text, encoding="utf-8")
    return str(folder)


@pytest.fixture
def refusal(monkeypatch, capsys):
    """Runs a top-level script as `python SCRIPT ARGS…` would, in this process (no second interpreter and torch
    import, seconds each), for command lines that must stop before training: returns what the script said on its
    way out (the SystemExit message and stderr). Any other exception fails the test, as a traceback would."""
    def run(script, *argv):
        monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
        monkeypatch.chdir(REPO_ROOT)
        with pytest.raises(SystemExit) as stop:
            runpy.run_path(os.path.join(REPO_ROOT, script), run_name="__main__")
        code = stop.value.code
        assert code not in (0, None), f"{script} {' '.join(map(str, argv))} exited successfully"
        return (code if isinstance(code, str) else "") + capsys.readouterr().err
    return run
