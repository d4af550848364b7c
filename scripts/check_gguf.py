"""Export a native checkpoint to GGUF and check that llama.cpp runs it as we do: the same ids for a mixed
Chinese/English/digits/emoji text and the same greedy tokens on five chat prompts. Needs `llama-cpp-python`
(pip install llama-cpp-python: it builds llama.cpp from source, about 20 minutes on 2 cores). Exit status 1 on any
difference.

    python scripts/check_gguf.py --preset tiny --tokenizer_dir out/tokenizer --weight full_sft --gguf out/gguf/minimind.gguf
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evals.gguf_parity import compare_with_llama_cpp, format_report  # noqa: E402
from model.args import add_source_args  # noqa: E402
from model.gguf_export import export_gguf  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p, weight="full_sft")
    p.add_argument("--gguf", default="out/gguf/minimind.gguf", help="the GGUF file to write (float32 weights)")
    p.add_argument("--max_new_tokens", type=int, default=24)
    p.add_argument("--save_json", default=None)
    args = p.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise SystemExit("error: llama-cpp-python is not installed (pip install llama-cpp-python)")
    try:
        if args.load_from or args.quantize != "none":
            raise ValueError("check_gguf.py exports native float weights: use --weight, not --load_from/--quantize")
        model, tokenizer, _ = load_model(ModelSource.from_args(args), "cpu")
        arch = export_gguf(model, args.gguf, args.tokenizer_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    report = compare_with_llama_cpp(model, tokenizer, args.gguf, max_new_tokens=args.max_new_tokens)
    print(f"{args.gguf}: llama.cpp arch {arch}")
    print(format_report(report))
    if args.save_json:
        with open(args.save_json, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
    sys.exit(0 if report["all_equal"] else 1)


if __name__ == "__main__":
    main()
