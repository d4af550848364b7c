"""Where the default tokenizer lives, and loading one with an error that says what to do."""
import os

DEFAULT_TOKENIZER_DIR = os.path.dirname(os.path.abspath(__file__))


def load_tokenizer(path: str | None = None):
    from transformers import AutoTokenizer
    path = path or DEFAULT_TOKENIZER_DIR
    if not os.path.isfile(os.path.join(path, "tokenizer.json")):
        raise FileNotFoundError(
            f"no tokenizer.json in {path}: train one with `python train_tokenizer.py --data_path FILE --save_dir "
            f"{path}` (or run scripts/quickstart.py), or pass --tokenizer_dir pointing at a MiniMind2 tokenizer folder")
    tok = AutoTokenizer.from_pretrained(path)
    for token, want in (("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)):
        if tok.convert_tokens_to_ids(token) != want:
            raise ValueError(f"{path}: {token} must have id {want} (MiniMind's special tokens are ids 0-2)")
    return tok
