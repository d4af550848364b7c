"""Bits-per-byte and perplexity of a model on a {"text"} jsonl. Prints a table, then one JSON line.

Bits-per-byte (summed NLL in bits / UTF-8 bytes of the text) does not depend on the tokenizer, so it compares runs
with different vocabularies; perplexity per token does not (a bigger vocabulary makes each token rarer).

    python scripts/eval_bpb.py --data_path out/world/pretrain_heldout.jsonl --preset tiny \\
        --tokenizer_dir out/tokenizer --max_seq_len 256            # out/pretrain_128.pth
    python scripts/eval_bpb.py --data_path heldout.jsonl --weight full_sft --lora_weight lora_identity
    python scripts/eval_bpb.py --data_path heldout.jsonl --load_from out/hf

The model flags are eval_model.py's (model/loading.py: one loader for every script that reads weights); text is
scored with the pretrain weights unless --weight says otherwise.
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from evals.lm_loss import heldout_loss  # noqa: E402
from model.args import add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402


def eval_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p, weight="pretrain")
    g = p.add_argument_group("scoring")
    g.add_argument("--data_path", required=True, help='jsonl with one {"text": ...} per line')
    g.add_argument("--max_seq_len", type=int, default=512, help="longer documents are truncated (as in training)")
    g.add_argument("--batch_size", type=int, default=16)
    g.add_argument("--max_lines", type=int, default=None, help="score only the first N documents")
    return p


def main(argv=None):
    args = eval_parser().parse_args(argv)
    device = pick_device(args.device, allow_mps=False)
    source = ModelSource.from_args(args)
    try:
        model, tokenizer, _ = load_model(source, device)
        r = heldout_loss(model, tokenizer, args.data_path, max_seq_len=args.max_seq_len, batch_size=args.batch_size,
                         device=device, max_lines=args.max_lines)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    described = source.describe(model.config)
    print(f"model       {described}")
    print(f"data        {args.data_path}: {r['docs']} docs, {r['tokens']} tokens, {r['bytes']} bytes")
    print(f"loss        {r['loss']:.4f} nats/token")
    print(f"perplexity  {r['ppl']:.3f}")
    print(f"bits/byte   {r['bpb']:.4f}")
    print(json.dumps({"model": described, "data_path": args.data_path, "max_seq_len": args.max_seq_len, **r}))
    return r


if __name__ == "__main__":
    main()
