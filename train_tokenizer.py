"""Train MiniMind's byte-level BPE tokenizer from a jsonl corpus (the tokenizer itself: model/tokenizer_train.py).

Each corpus line is a JSON object ``{"text": "..."}``; a bad line stops with its file and line number.

Usage:
    python train_tokenizer.py --data_path dataset/pretrain_hq.jsonl --vocab_size 6400
"""
import argparse

from dataset.jsonl_files import iter_texts
from model.tokenizer_train import train_tokenizer


def main():
    p = argparse.ArgumentParser(description="Train MiniMind's byte-level BPE tokenizer on a jsonl corpus.")
    p.add_argument("--data_path", default="dataset/pretrain_hq.jsonl", help='jsonl file, one {"text": ...} per line')
    p.add_argument("--vocab_size", type=int, default=6400)
    p.add_argument("--save_dir", default="model/", help="where tokenizer.json / tokenizer_config.json go")
    p.add_argument("--split_cjk", type=int, choices=[0, 1], default=1,
                   help="1: every CJK character is its own pre-token while merges are learned (no token spans "
                        "two characters); the saved tokenizer pre-tokenizes as llama.cpp's 'refact' either way")
    p.add_argument("--min_frequency", type=int, default=2, help="minimum pair count for a merge")
    args = p.parse_args()
    try:
        train_tokenizer(iter_texts(args.data_path, progress=True), args.save_dir, vocab_size=args.vocab_size,
                        split_cjk=bool(args.split_cjk), min_frequency=args.min_frequency)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main()
