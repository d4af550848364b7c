"""Bits-per-byte and perplexity of a model on a {"text"} jsonl. Prints a table, then one JSON line.

Bits-per-byte (summed NLL in bits / UTF-8 bytes of the text) does not depend on the tokenizer, so it compares runs
with different vocabularies; perplexity per token does not (a bigger vocabulary makes each token rarer).

    python scripts/eval_bpb.py --data_path out/world/pretrain_heldout.jsonl --preset tiny \\
        --tokenizer_dir out/tokenizer --max_seq_len 256            # out/pretrain_128.pth
    python scripts/eval_bpb.py --data_path heldout.jsonl --weight full_sft --lora_weight lora_identity
    python scripts/eval_bpb.py --data_path heldout.jsonl --load_from out/hf

The model flags are eval_model.py's (one loader for every script that reads weights).
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from eval_model import build_parser, inference_device, load_model  # noqa: E402
from evals.lm_loss import heldout_loss  # noqa: E402
from model.weights import weight_path  # noqa: E402

CHAT_ONLY = ("interactive", "history_cnt", "temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens",
             "show_speed", "seed")


def scoring_parser(description: str) -> argparse.ArgumentParser:
    """eval_model.py's parser with its chat flags hidden, for scripts that score text: text is scored with the
    pretrain weights unless --weight says otherwise."""
    p = build_parser()
    p.description = description
    for action in p._actions:  # argparse has no public way to hide an inherited flag
        if action.dest in CHAT_ONLY:
            action.help = argparse.SUPPRESS
    p.set_defaults(weight="pretrain")
    return p


def eval_parser():
    p = scoring_parser(__doc__)
    g = p.add_argument_group("scoring")
    g.add_argument("--data_path", required=True, help='jsonl with one {"text": ...} per line')
    g.add_argument("--max_seq_len", type=int, default=512, help="longer documents are truncated (as in training)")
    g.add_argument("--batch_size", type=int, default=16)
    g.add_argument("--max_lines", type=int, default=None, help="score only the first N documents")
    return p


def describe_weights(args, config) -> str:
    lora = f" + lora {args.lora_weight}" if args.lora_weight != "none" else ""
    int8 = " (int8 weights)" if args.quantize == "int8" else ""
    return weight_path(args.out_dir, args.weight, config.hidden_size, config.use_moe) + lora + int8


def main(argv=None):
    args = eval_parser().parse_args(argv)
    device = inference_device(args.device)
    try:
        model, tokenizer, _ = load_model(args, device)
        r = heldout_loss(model, tokenizer, args.data_path, max_seq_len=args.max_seq_len, batch_size=args.batch_size,
                         device=device, max_lines=args.max_lines)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    source = args.load_from or describe_weights(args, model.config)
    print(f"model       {source}")
    print(f"data        {args.data_path}: {r['docs']} docs, {r['tokens']} tokens, {r['bytes']} bytes")
    print(f"loss        {r['loss']:.4f} nats/token")
    print(f"perplexity  {r['ppl']:.3f}")
    print(f"bits/byte   {r['bpb']:.4f}")
    print(json.dumps({"model": source, "data_path": args.data_path, "max_seq_len": args.max_seq_len, **r}))
    return r


if __name__ == "__main__":
    main()
