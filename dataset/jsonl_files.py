"""Reading jsonl files: small ones whole, big {"text"} corpora lazily with errors that name the file and line."""
import json
import os

from dataset.jsonl_index import check_line
from dataset.validate import validate_pretrain


def read_jsonl(path: str) -> list:
    """Every non-blank line of a small file (evaluation sets, metrics logs), parsed."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def iter_texts(path: str, progress: bool = False):
    """The "text" of each non-blank line, never holding the whole file. A bad line raises
    ValueError("path:lineno: reason"), the format the training datasets use. progress: a bar over the file's
    bytes (cheap, unlike counting lines first)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no data file at {path}")
    from tqdm import tqdm
    with open(path, "rb") as f, tqdm(total=os.path.getsize(path), unit="B", unit_scale=True,
                                     desc=f"reading {os.path.basename(path)}", disable=not progress) as bar:
        # bytes: invalid UTF-8 becomes a line-numbered error, not a decoder crash
        for lineno, raw in enumerate(f, start=1):
            bar.update(len(raw))
            if not raw.strip():
                continue
            obj, reason, _ = check_line(raw, validate_pretrain)  # the training datasets' own check
            if reason is not None:
                raise ValueError(f"{path}:{lineno}: {reason}")
            yield obj["text"]
