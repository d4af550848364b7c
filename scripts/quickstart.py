"""The whole MiniMind pipeline on the embedded synthetic world, on a laptop CPU, in minutes.

    python scripts/quickstart.py            # world → tokenizer → pretrain → SFT → evaluate → chat → export → report
    python scripts/quickstart.py --all      # + LoRA, DPO, distillation, reasoning, MoE vs dense, GRPO, PPO
                                            #   (scripts/quickstart_all.py)

Every stage runs through the same command-line scripts a user runs (train_pretrain.py, train_full_sft.py,
export_model.py), so this file is also the living spec of how the pieces fit. Results: out/report.md, out/report.json.
"""
import argparse
import copy
import itertools
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

from dataset.jsonl_files import read_jsonl  # noqa: E402
from dataset.world import make_world  # noqa: E402
from dataset.world.files import training_chars  # noqa: E402
from dataset.tool_messages import chat_texts  # noqa: E402
from dataset.world.tools import tool_boilerplate  # noqa: E402
from evals.answers import check_fact_answer  # noqa: E402
from evals.choice import build_prompt, predict_choices  # noqa: E402
from evals.lm_loss import heldout_loss  # noqa: E402
from evals.qa import chat_replies, exact_match  # noqa: E402
from evals.ceval_data import read_ceval_split  # noqa: E402
from evals.report import write_report  # noqa: E402
from model.device import cpu_has_native_bf16  # noqa: E402
from model.model_minimind import config_from_preset  # noqa: E402
from model.quantize import quantize_int8  # noqa: E402
from model.tokenizer import load_tokenizer  # noqa: E402
from model.tokenizer_train import train_tokenizer  # noqa: E402
from model.weights import load_native  # noqa: E402

SAMPLE_PROMPTS = ["你好", "Who are you?", "{train_q}", "{heldout_q}", "3加4等于几？"]


def sh(*cmd):
    """Run a stage script exactly as a user would; stream its output; stop the pipeline if it fails."""
    print("\n$ " + " ".join(cmd), flush=True)
    subprocess.run([sys.executable, *cmd], cwd=REPO, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", default="out")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--n_people", type=int, default=60)
    p.add_argument("--bios_per_person", type=int, default=40,
                   help="distinct renderings per person and language: varied wording, not repeated documents, is "
                        "what lets a model answer about people it only read about (Allen-Zhu & Li 2023, arXiv:2309.14316)")
    p.add_argument("--qa_copies", type=int, default=4, help="plain-text Q&A documents per train-half person")
    p.add_argument("--qa_chat_copies", type=int, default=4, help="the same Q&A as ChatML turns in pretraining")
    p.add_argument("--choice_copies", type=int, default=4)
    p.add_argument("--vocab_size", type=int, default=2000)
    p.add_argument("--pretrain_steps", type=int, default=1200)
    p.add_argument("--sft_steps", type=int, default=100,
                   help="the chat format is already known from pretraining; more SFT steps overfit the train half "
                        "(docs/results.md)")
    p.add_argument("--pretrain_batch_size", type=int, default=8,
                   help="small batches = more optimizer steps for the same tokens, which memorization needs")
    p.add_argument("--sft_batch_size", type=int, default=16)
    p.add_argument("--seq_len", type=int, default=256)
    p.add_argument("--pretrain_lr", type=float, default=3e-3)
    p.add_argument("--sft_lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("--all: the post-training stages")
    g.add_argument("--all", action="store_true",
                   help="also run LoRA, DPO, distillation, reasoning, MoE vs dense, GRPO and PPO")
    g.add_argument("--lora_steps", type=int, default=240)
    g.add_argument("--lora_lr", type=float, default=4e-3)
    g.add_argument("--dpo_steps", type=int, default=250)
    g.add_argument("--dpo_lr", type=float, default=5e-5)
    g.add_argument("--dpo_beta", type=float, default=1.0)
    g.add_argument("--distill_steps", type=int, default=400)
    g.add_argument("--distill_alpha", type=float, default=0.3)
    g.add_argument("--reason_steps", type=int, default=400)
    g.add_argument("--reason_lr", type=float, default=2e-3)
    g.add_argument("--moe_steps", type=int, default=300)
    g.add_argument("--rl_prompts", type=int, default=8, help="GRPO/PPO: prompts per step")
    g.add_argument("--rl_generations", type=int, default=8, help="GRPO/PPO: samples per prompt")
    g.add_argument("--grpo_reward_weights", default="1,0.2", help="arithmetic GRPO: weights of answer,steps")
    g.add_argument("--grpo_steps", type=int, default=100)
    g.add_argument("--grpo_lr", type=float, default=2e-5)
    g.add_argument("--grpo_beta", type=float, default=0.0)
    g.add_argument("--facts_steps", type=int, default=100, help="fact-QA GRPO and PPO")
    g.add_argument("--facts_lr", type=float, default=5e-5)
    g.add_argument("--tool_steps", type=int, default=2000, help="tool-use SFT")
    g.add_argument("--tool_lr", type=float, default=2e-3)
    g.add_argument("--agent_steps", type=int, default=80, help="agentic RL on two-step tool tasks")
    g.add_argument("--agent_lr", type=float, default=1e-4)
    args = p.parse_args()
    t_start = time.time()
    out, world, tok_dir = args.out_dir, os.path.join(args.out_dir, "world"), os.path.join(args.out_dir, "tokenizer")
    report = {"preset": args.preset, "quickstart_args": vars(args), "stages": {}}

    # 1. the world: deterministic synthetic people, in upstream MiniMind's file formats
    stats = make_world(world, seed=args.seed, n_people=args.n_people, bios_per_person=args.bios_per_person,
                       qa_copies=args.qa_copies, qa_chat_copies=args.qa_chat_copies, choice_copies=args.choice_copies)
    print(f"world: {args.n_people} people → {world}")
    report["world"] = {"n_people": args.n_people, "files": {k: v["lines"] for k, v in stats["files"].items()}}

    # 2. tokenizer: byte-level BPE on the pretraining text plus the chat text (so answers tokenize alike), plus the
    #    tool prompts' fixed text (so a tools block costs few tokens); every character of the training files one token
    corpus = itertools.chain(
        (text for name in ("pretrain.jsonl", "sft.jsonl") for rec in read_jsonl(os.path.join(world, name))
         for text in ([rec["text"]] if "text" in rec else chat_texts(rec["conversations"]))),
        tool_boilerplate() * 20)
    train_tokenizer(corpus, tok_dir, vocab_size=args.vocab_size, show_progress=False,
                    required_chars=training_chars(world))

    # 3-4. pretrain, then SFT from the pretrained weights: the stage scripts, CPU-sized
    common = ["--preset", args.preset, "--tokenizer_dir", tok_dir, "--out_dir", out, "--epochs", "1000", "--log_interval", "10", "--save_interval", "100000",
              "--seed", str(args.seed), "--checkpoint_dir", os.path.join(out, "checkpoints")]
    t = time.time()
    sh("train_pretrain.py", *common, "--data_path", os.path.join(world, "pretrain.jsonl"), "--packing", "1",
       "--batch_size", str(args.pretrain_batch_size), "--max_seq_len", str(args.seq_len), "--accumulation_steps", "1", "--learning_rate", str(args.pretrain_lr),
       "--warmup_iters", "10", "--max_steps", str(args.pretrain_steps))
    report["stages"]["pretrain"] = {"wall_time_s": time.time() - t}
    t = time.time()
    sh("train_full_sft.py", *common, "--data_path", os.path.join(world, "sft.jsonl"), "--from_weight", "pretrain",
       "--batch_size", str(args.sft_batch_size), "--max_seq_len", "128", "--learning_rate", str(args.sft_lr), "--warmup_iters", "5",
       "--max_steps", str(args.sft_steps))
    report["stages"]["full_sft"] = {"wall_time_s": time.time() - t}

    # 5. evaluate
    t = time.time()
    tokenizer = load_tokenizer(tok_dir)
    config = config_from_preset(args.preset, vocab_size=len(tokenizer))
    hidden = config.hidden_size
    pre = load_native(os.path.join(out, f"pretrain_{hidden}.pth"), config)
    sft = load_native(os.path.join(out, f"full_sft_{hidden}.pth"), config)
    held = heldout_loss(pre, tokenizer, os.path.join(world, "pretrain_heldout.jsonl"), max_seq_len=args.seq_len)
    report["pretrain"] = {"heldout_loss": held["loss"], "bpb": held["bpb"], "ppl": held["ppl"]}
    qa = read_jsonl(os.path.join(world, "qa_heldout.jsonl"))
    qa_train = read_jsonl(os.path.join(world, "qa_train_sample.jsonl"))
    replies = chat_replies(sft, tokenizer, [r["conversations"] for r in qa])
    train_replies = chat_replies(sft, tokenizer, [r["conversations"] for r in qa_train])
    by_group = exact_match(qa, replies, check_fact_answer)
    report["sft"] = {"qa_exact_match": by_group["all"], "qa_by_group": by_group,
                     "qa_train_exact_match": exact_match(qa_train, train_replies, check_fact_answer)["all"],
                     "qa_examples": [{"q": r["conversations"][0]["content"], "expected": r["answer"], "reply": y,
                                      "ok": check_fact_answer(y, r["answer"])} for r, y in list(zip(qa, replies))[:6]]}
    # The same questions through weight-only int8 (eval_model.py --quantize int8): what the faster decoding costs.
    # Its activations are bf16, emulated (and slow) on a CPU without native bf16: checked only where it is native.
    report["sft"]["qa_exact_match_int8"] = None
    if cpu_has_native_bf16():
        try:
            int8 = quantize_int8(copy.deepcopy(sft))
            report["sft"]["qa_exact_match_int8"] = exact_match(
                qa, chat_replies(int8, tokenizer, [r["conversations"] for r in qa]), check_fact_answer)["all"]
        except (RuntimeError, ValueError) as e:  # the kernel's self-check refused this CPU / torch
            print(f"int8 check skipped: {e}")
    exam = read_ceval_split(os.path.join(world, "exam"), "val")
    prompts = [build_prompt(tokenizer, q["question"], q["options"], chat=True) for q in exam]
    preds = predict_choices(sft, tokenizer, prompts)
    exam_acc = sum(p_ == q["answer"] for p_, q in zip(preds, exam)) / len(exam)
    by_subject = {}
    for p_, q in zip(preds, exam):
        by_subject.setdefault(q["subject"], []).append(p_ == q["answer"])
    report["exam"] = {"accuracy": exam_acc, "n": len(exam), "chance": 0.25,
                      "by_subject": {k: sum(v) / len(v) for k, v in by_subject.items()}}
    report["stages"]["evaluate"] = {"wall_time_s": time.time() - t}

    # 6. a few chats with the SFT model
    fill = {"train_q": qa_train[0]["conversations"][0]["content"], "heldout_q": qa[0]["conversations"][0]["content"]}
    questions = [q.format(**fill) for q in SAMPLE_PROMPTS]
    answers = chat_replies(sft, tokenizer, [[{"role": "user", "content": q}] for q in questions])
    report["samples"] = [{"user": q, "assistant": a} for q, a in zip(questions, answers)]
    print("\nSample chats with the SFT model:")
    for s in report["samples"]:
        print(f"  👤 {s['user']}\n  🤖 {s['assistant']}")

    # 7. export as a Hugging Face folder (a plain Llama: loads without trust_remote_code), and as one GGUF file
    # for llama.cpp / Ollama (float32: the file is small, and llama.cpp then reproduces our greedy tokens)
    sh("export_model.py", "--weight", os.path.join(out, f"full_sft_{hidden}.pth"), "--save_dir",
       os.path.join(out, "hf"), "--tokenizer_dir", tok_dir, "--preset", args.preset)
    sh("export_model.py", "--weight", os.path.join(out, f"full_sft_{hidden}.pth"), "--gguf",
       os.path.join(out, "gguf", "minimind.gguf"), "--dtype", "float32", "--tokenizer_dir", tok_dir,
       "--preset", args.preset)

    # 8. (--all) post-training stages, each with its own measured effect
    if args.all:
        from scripts.quickstart_all import Stages
        stages = Stages(args, sh, common, out, world, tokenizer, config, sft_by_kind=by_group)
        results, wall_times = stages.run_all()
        report.update(results)
        report["stages"].update(wall_times)

    # 9. report
    for stage in ("pretrain", "full_sft"):
        log = os.path.join(out, "logs", f"{stage}_{hidden}.jsonl")
        report["stages"][stage]["metrics"] = log
        curve = read_jsonl(log)
        report["stages"][stage].update(final_loss=curve[-1]["loss"], tokens=curve[-1]["tokens"],
                                       steps=curve[-1]["step"],
                                       tok_per_s=curve[-1]["tokens"] / max(curve[-1]["elapsed_s"], 1e-9))
    report["wall_time_s"] = time.time() - t_start
    report["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "device": "cpu", "threads": torch.get_num_threads(), "machine": platform.machine(),
                             "processor": platform.processor() or platform.machine()}
    write_report(out, report)
    print(f"\nquickstart done in {report['wall_time_s']:.0f}s — pretrain held-out loss "
          f"{report['pretrain']['heldout_loss']:.3f}, held-out QA exact match {report['sft']['qa_exact_match']:.1%}, "
          f"exam accuracy {report['exam']['accuracy']:.1%} (chance 25%) → {out}/report.md")


if __name__ == "__main__":
    main()
