"""C-Eval / CMMLU multiple-choice evaluation by next-token logits over A/B/C/D.

    python eval_ceval.py --data_dir dataset/ceval-exam --split val                 # out/full_sft_512.pth
    python eval_ceval.py --data_dir dataset/cmmlu --split test --shots 5 --chat 0
    python eval_ceval.py --data_dir DIR --load_from out/hf                          # any HF causal-LM folder
    python eval_ceval.py --data_dir out/world/exam --preset tiny --tokenizer_dir out/tokenizer   # the embedded exam

Writes {save_dir}/accuracy_by_subject.csv, {save_dir}/summary.json and, on C-Eval's test split (no answers), the
predictions in C-Eval's submission shape {subject: {id: letter}} as {save_dir}/submission.json.
"""
import argparse
import csv
import json
import os

from model.args import add_source_args
from model.device import pick_device
from model.loading import ModelSource, load_model
from evals.ceval_data import category_of, detect_format, read_split
from evals.choice import build_prompt, predict_choices

HEADERS = {"ceval": "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
           "cmmlu": "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--split", default="val", help="val / test / dev (C-Eval); test / dev (CMMLU)")
    p.add_argument("--subjects", default=None, help="comma-separated subset")
    p.add_argument("--format", choices=("auto", "ceval", "cmmlu"), default="auto")
    p.add_argument("--shots", type=int, default=0, help="k solved dev-split examples before each question")
    p.add_argument("--chat", type=int, choices=(0, 1), default=1, help="wrap the prompt in the chat template")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--save_dir", default="out/ceval")
    args = p.parse_args()
    try:
        fmt = detect_format(args.data_dir) if args.format == "auto" else args.format
        subjects = args.subjects.split(",") if args.subjects else None
        rows = read_split(args.data_dir, args.split, subjects, fmt)
        dev = read_split(args.data_dir, "dev", subjects, fmt) if args.shots else []
        device = pick_device(args.device, allow_mps=False)
        model, tokenizer, _ = load_model(ModelSource.from_args(args), device)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")

    shots = {}
    for r in dev:
        shots.setdefault(r["subject"], []).append((r["question"], r["options"], r["answer"]))
    prompts = [build_prompt(tokenizer, r["question"], r["options"], shots.get(r["subject"], [])[:args.shots],
                            chat=bool(args.chat), header=HEADERS[fmt].format(subject=r["subject"]))
               for r in rows]
    preds = predict_choices(model, tokenizer, prompts, args.batch_size, device, progress=True)

    os.makedirs(args.save_dir, exist_ok=True)
    by_subject = {}
    for r, pred in zip(rows, preds):
        by_subject.setdefault(r["subject"], []).append(pred == r["answer"] if r["answer"] else None)
    scored = {s: v for s, v in by_subject.items() if v and v[0] is not None}
    if scored:
        with open(os.path.join(args.save_dir, "accuracy_by_subject.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["subject", "n", "accuracy"])
            for s, v in sorted(scored.items()):
                w.writerow([s, len(v), f"{sum(v) / len(v):.4f}"])
        n = sum(len(v) for v in scored.values())
        overall = sum(sum(v) for v in scored.values()) / n
        by_category = {}
        for s, v in scored.items():
            by_category.setdefault(category_of(s), []).extend(v)
        summary = {"format": fmt, "split": args.split, "shots": args.shots, "chat": args.chat, "n": n,
                   "overall": overall, "chance": 0.25,
                   "by_category": {c: sum(v) / len(v) for c, v in sorted(by_category.items())},
                   "by_subject": {s: sum(v) / len(v) for s, v in sorted(scored.items())}}
        with open(os.path.join(args.save_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2, ensure_ascii=False)
        width = max(map(len, scored))
        for s, v in sorted(scored.items()):
            print(f"{s:<{width}}  {len(v):>5}  {100 * sum(v) / len(v):6.2f}%")
        for c, acc in summary["by_category"].items():
            print(f"[{c}]".ljust(width) + f"  {len(by_category[c]):>5}  {100 * acc:6.2f}%")
        print(f"{'overall':<{width}}  {n:>5}  {100 * overall:6.2f}%   (chance 25%)")
    if any(r["answer"] is None for r in rows):
        submission = {}
        for r, pred in zip(rows, preds):
            submission.setdefault(r["subject"], {})[str(r["id"])] = pred
        with open(os.path.join(args.save_dir, "submission.json"), "w") as f:
            json.dump(submission, f, ensure_ascii=False)
        print(f"wrote predictions for {len(rows)} unanswered questions → {args.save_dir}/submission.json")


if __name__ == "__main__":
    main()
