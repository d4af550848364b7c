"""Tool use on the embedded world's held-out questions: right tool, valid arguments, correct final answer, false
calls on prompts that need no tool — with tools and, for the same questions, without.

    python scripts/eval_toolcall.py --preset tiny --tokenizer_dir out/tokenizer --weight tool_sft
    python scripts/eval_toolcall.py --load_from out/hf_tools --save_json out/toolcall.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset.tool_messages import require_tool_tokens  # noqa: E402
from evals.toolcall import evaluate_tool_use, format_report, load_items  # noqa: E402
from toolcall.world import read_world_people  # noqa: E402
from model.args import add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p, weight="tool_sft")
    p.add_argument("--world_dir", default="out/world", help="the generated world (python -m dataset.world)")
    p.add_argument("--n_per_kind", type=positive, default=None, help="first N questions of each kind (default: all)")
    p.add_argument("--max_turns", type=positive, default=3)
    p.add_argument("--max_new_tokens", type=positive, default=96)
    p.add_argument("--batch_size", type=positive, default=32)
    p.add_argument("--save_json", default=None)
    args = p.parse_args()
    try:
        items = load_items(args.world_dir, args.n_per_kind)
        people = read_world_people(args.world_dir)
        device = pick_device(args.device, allow_mps=False)
        model, tokenizer, _ = load_model(ModelSource.from_args(args), device)
        require_tool_tokens(tokenizer, "tool-use evaluation")
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise SystemExit(f"error: {e}")
    report = evaluate_tool_use(model, tokenizer, items, people, max_turns=args.max_turns,
                               max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, device=device)
    print(format_report(report))
    for s in report["samples"]:
        print(json.dumps(s, ensure_ascii=False))
    if args.save_json:
        with open(args.save_json, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
