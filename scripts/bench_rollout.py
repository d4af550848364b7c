"""Rollouts are the cost of RL: trainer.rollout.LocalRollout against transformers' generate() (not a test).

On the same weights, the same left-padded chat prompts (different lengths) and the same max_new_tokens, greedy
(temperature 0 / do_sample=False), both stopping a row at EOS (transformers pads finished rows with the pad id,
LocalRollout too), per dtype × batch:
  * tokens/s = completion tokens (up to and including each row's EOS, the rollout's mask sum) / wall seconds of the
    whole call, prefill included (a rollout pays for it too);
  * whether the greedy tokens are equal, row by row, up to and including EOS (and where rows part if they do);
  * sampling at temperature 1 (top_p 1, top_k 0: what RL draws from), ours against generate(do_sample=True) with
    the same knobs; the same seed, but the two draw differently, so the sampled rows are not compared.
LocalRollout also computes every token's log-prob (RL needs them); generate() is asked for tokens only. Both stop
computing once every row has finished; ours also drops finished rows from the running batch as they pile up.

    OMP_NUM_THREADS=2 python scripts/bench_rollout.py                        # tiny preset, random init
    OMP_NUM_THREADS=2 python scripts/bench_rollout.py --preset small         # MiniMind2-small (26M) shape
    python scripts/bench_rollout.py --weight full_sft --out_dir out --preset small   # trained weights

transformers' side is LlamaForCausalLM holding our weights (a dense MiniMind is a Llama; what export_hf writes), or
with --hf_impl to_hf our own network inside transformers' GenerationMixin (model_minimind_hf.to_hf; MoE presets
always take this one). The issue's target is ours ≥ 1.5× transformers at batch 8 and 16. Random weights (the
default) almost never emit EOS, so every row runs to max_new_tokens; trained weights finish rows early.
Each cell's runs are interleaved (one warm-up call each, left out; then rounds that reverse the order every round),
figures are medians, so another job on the machine slows both alike; compare ratios, not absolute figures across
runs. Prints a line per figure, a markdown table, then one JSON object as the last line.
On a machine another job shares, run one thread (OMP_NUM_THREADS=1): on a 2-core VM with a training job on one core,
two OpenMP threads made the tiny preset's decode steps ~75x slower than one (threads wait at barriers for a
descheduled twin). In bfloat16 LlamaForCausalLM rounds differently from our network, so random weights' near-tied
logits part greedy rows after some tokens; --hf_impl to_hf (the same modules) gave equal tokens there, and float32
did with either.
"""
import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from transformers import GenerationConfig, LlamaForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from model.device import DTYPES, cpu_has_native_bf16, pick_device  # noqa: E402
from model.hf_convert import llama_config  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402
from model.model_minimind import PRESETS, MiniMindForCausalLM, config_from_preset, count_params  # noqa: E402
from model.model_minimind_hf import to_hf  # noqa: E402
from model.tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer  # noqa: E402
from scripts.bench import interleave, sync  # noqa: E402
from trainer.rollout import LocalRollout, left_pad_ids  # noqa: E402

ALIASES = {"small": "minimind2-small", "base": "minimind2", "moe": "minimind2-moe"}
# Chat questions whose templated prompts are 34-61 tokens with the shipped tokenizer (another tokenizer gives other
# lengths; the run prints them). A batch cycles through them.
QUESTIONS = ["你好，请简单介绍一下你自己，你能帮我做些什么？",
             "What is the capital of France, and why is it famous?",
             "请用三句话解释什么是机器学习，并举一个生活中的例子。",
             "Write a short poem about the sea at night, with rhymes.",
             "一个长方形长8厘米，宽5厘米，面积和周长各是多少？",
             "Explain the difference between a list and a tuple in Python, and when should I use each one?",
             "中国的四大发明是什么？它们对世界产生了哪些影响？",
             "Give me three tips for learning a new language quickly."]
TARGET_RATIO = 1.5


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def chat_prompts(tok, batch: int, vocab_size: int, num_generations: int = 1) -> list[list[int]]:
    """`batch` rows: batch / num_generations prompts, each repeated num_generations times in a row (a GRPO group)."""
    if batch % num_generations:
        raise SystemExit(f"error: batch {batch} is not a multiple of --num_generations {num_generations}")
    rows = []
    for i in range(batch // num_generations):
        text = tok.apply_chat_template([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                                       add_generation_prompt=True, tokenize=False)
        ids = tok(text).input_ids
        if max(ids) >= vocab_size:
            raise SystemExit(f"error: the tokenizer's ids reach {max(ids)}, the model's vocabulary is {vocab_size}")
        rows += [ids] * num_generations
    return rows


def completion_rows(tokens: torch.Tensor, eos: int) -> list[list[int]]:
    """Each row's tokens up to and including its first EOS (all of them if it has none)."""
    rows = []
    for row in tokens.tolist():
        rows.append(row[:row.index(eos) + 1] if eos in row else row)
    return rows


def ours_fn(model, ids, mask, new_tokens, temperature, eos, pad, device, seed, keep, group=1):
    rollout = LocalRollout(max_new_tokens=new_tokens, temperature=temperature, top_p=1.0, top_k=0,
                           eos_token_id=eos, pad_token_id=pad)

    def go():
        torch.manual_seed(seed)
        sync(device)
        t0 = time.perf_counter()
        r = rollout(model, ids, mask, num_generations=group)  # a group's prompt is prefilled once
        sync(device)
        wall = time.perf_counter() - t0
        keep["rows"] = completion_rows(r.completion_ids.masked_fill(r.completion_mask == 0, pad), eos)
        keep["tokens"] = int(r.completion_mask.sum())
        return keep["tokens"] / wall

    return go


def hf_fn(hf, ids, mask, new_tokens, eos, pad, device, keep, sampled=False, seed=0):
    # sampled: temperature 1 from the full distribution, as ours (transformers' default top_k 50 switched off)
    knobs = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0) if sampled else dict(do_sample=False)
    config = GenerationConfig(max_new_tokens=new_tokens, eos_token_id=eos, pad_token_id=pad, bos_token_id=None,
                              **knobs)

    def go():
        torch.manual_seed(seed)
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = hf.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        sync(device)
        wall = time.perf_counter() - t0
        keep["rows"] = completion_rows(out[:, ids.shape[1]:], eos)
        keep["tokens"] = sum(map(len, keep["rows"]))
        return keep["tokens"] / wall

    return go


def compare_rows(a: list[list[int]], b: list[list[int]]) -> dict:
    """Rows equal, and for the others the index of the first token where they part."""
    parted = {}
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            parted[i] = next((j for j, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
    return {"greedy_equal": not parted and len(a) == len(b), "greedy_equal_rows": len(a) - len(parted),
            "rows": len(a), "first_difference_at": parted}


def rollout_cell(model, hf, prompts, new_tokens, reps, device, eos, pad, sampled, seed, group=1):
    """transformers gets every row; ours gets each group's prompt once with num_generations=group (rows of a group
    are consecutive copies), as an RL trainer calls it."""
    ids, mask = left_pad_ids(prompts, pad)
    ids, mask = ids.to(device), mask.to(device)
    uids, umask = ids[::group], mask[::group]
    kept = {"ours": {}, "hf": {}, "ours_sampled": {}, "hf_sampled": {}}
    runs = {"ours": ours_fn(model, uids, umask, new_tokens, 0.0, eos, pad, device, seed, kept["ours"], group),
            "hf": hf_fn(hf, ids, mask, new_tokens, eos, pad, device, kept["hf"])}
    if sampled:
        runs["ours_sampled"] = ours_fn(model, uids, umask, new_tokens, 1.0, eos, pad, device, seed,
                                       kept["ours_sampled"], group)
        runs["hf_sampled"] = hf_fn(hf, ids, mask, new_tokens, eos, pad, device, kept["hf_sampled"], True, seed)
    _, rates = interleave(runs, reps)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cell = {"batch": len(prompts), "tok_s_ours": round(med["ours"], 1), "tok_s_hf": round(med["hf"], 1),
            "ratio": round(med["ours"] / med["hf"], 3), "tokens_ours": kept["ours"]["tokens"],
            "tokens_hf": kept["hf"]["tokens"], "rates_ours": [round(r, 1) for r in rates["ours"]],
            "rates_hf": [round(r, 1) for r in rates["hf"]], **compare_rows(kept["ours"]["rows"], kept["hf"]["rows"])}
    if sampled:
        cell.update(tok_s_ours_sampled=round(med["ours_sampled"], 1),
                    tokens_ours_sampled=kept["ours_sampled"]["tokens"],
                    tok_s_hf_sampled=round(med["hf_sampled"], 1), tokens_hf_sampled=kept["hf_sampled"]["tokens"],
                    ratio_sampled=round(med["ours_sampled"] / med["hf_sampled"], 3))
    return cell


def build_model(args):
    """(our model in float32 on the CPU, description of the weights)."""
    if args.weight:
        source = ModelSource(weight=args.weight, out_dir=args.out_dir, tokenizer_dir=args.tokenizer_dir,
                             preset=args.preset)
        model = load_model(source, torch.device("cpu"))[0]
        if not isinstance(model, MiniMindForCausalLM):
            raise SystemExit("error: --weight must load a native MiniMind model")
        return model.float(), source.describe(model.config)
    torch.manual_seed(args.seed)
    model = MiniMindForCausalLM(config_from_preset(args.preset)).eval()
    return model, "random init (seed %d)" % args.seed


def transformers_twin(model, impl: str):
    """transformers' side with our weights: a stock Llama copy, or our own modules inside GenerationMixin."""
    if impl == "to_hf":
        return to_hf(copy.deepcopy(model)).eval()
    hf = LlamaForCausalLM(llama_config(model.config))
    hf.load_state_dict(model.state_dict(), strict=True)
    return hf.eval()


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS) + sorted(ALIASES),
                   help=f"model shape (aliases: {ALIASES})")
    p.add_argument("--weight", default=None, help="stage name ({out_dir}/{weight}_{hidden}.pth, as the chat "
                   "front ends load it); default: random init of --preset")
    p.add_argument("--out_dir", default="out")
    p.add_argument("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    p.add_argument("--dtypes", default=None, help="comma-separated; default bfloat16,float32 where bf16 is native "
                   "(CUDA, AVX512-BF16/AMX CPUs), else float32")
    p.add_argument("--batches", default="8,16", help="comma-separated prompt batch sizes")
    p.add_argument("--num_generations", type=int, default=1, help="rows per prompt (GRPO's group): a batch of B "
                   "rows holds B / this many prompts, each repeated")
    p.add_argument("--max_new_tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions after the warm-up; medians")
    p.add_argument("--sampled", type=int, choices=(0, 1), default=1,
                   help="also time LocalRollout sampling at temperature 1")
    p.add_argument("--hf_impl", choices=("llama", "to_hf"), default="llama",
                   help="llama: transformers' LlamaForCausalLM with our weights; to_hf: our network in "
                        "transformers' GenerationMixin (generate()'s loop only)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.preset = ALIASES.get(args.preset, args.preset)
    return args


def main(argv=None):
    args = parse(argv)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = pick_device(args.device)
    native_bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    dtypes = args.dtypes.split(",") if args.dtypes else (["bfloat16", "float32"] if native_bf16 else ["float32"])
    tok = load_tokenizer(args.tokenizer_dir)
    model, weights = build_model(args)
    impl = "to_hf" if model.config.use_moe else args.hf_impl  # an MoE has no stock transformers architecture
    batches = [int(b) for b in args.batches.split(",")]
    eos, pad = model.config.eos_token_id, model.config.pad_token_id
    out = {"device": str(device), "cpu": cpu_model() if device.type == "cpu" else None,
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "cpu_native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
           "torch_threads": torch.get_num_threads(), "loadavg_start": os.getloadavg(), "preset": args.preset,
           "params": count_params(model), "weights": weights, "hf_impl": impl, "max_new_tokens": args.max_new_tokens,
           "num_generations": args.num_generations,
           "reps": args.reps, "prompt_lens": [len(r) for r in chat_prompts(tok, min(len(QUESTIONS), max(batches)),
                                                                           model.config.vocab_size)],
           "eos_token_id": eos, "pad_token_id": pad, "target_ratio": TARGET_RATIO, "cells": {}}

    def show(name, value):
        print(f"{name:<62} {value}", flush=True)

    show("preset / params / weights", f"{args.preset} / {out['params'] / 1e6:.1f}M / {weights}")
    show("prompt lengths (tokens, cycled, left-padded)", out["prompt_lens"])
    for name in dtypes:
        ours = copy.deepcopy(model).to(device, DTYPES[name]).eval()
        hf = transformers_twin(model, impl).to(device, DTYPES[name])
        for b in batches:
            prompts = chat_prompts(tok, b, model.config.vocab_size, args.num_generations)
            cell = rollout_cell(ours, hf, prompts, args.max_new_tokens, args.reps, device, eos, pad,
                                bool(args.sampled), args.seed, args.num_generations)
            out["cells"][f"{name}/b{b}"] = cell
            show(f"rollout tok/s {name} batch {b}: ours / transformers (ratio)",
                 f"{cell['tok_s_ours']} / {cell['tok_s_hf']} ({cell['ratio']})")
            show(f"greedy tokens equal {name} batch {b}",
                 f"{cell['greedy_equal']} ({cell['greedy_equal_rows']}/{cell['rows']} rows"
                 + (f"; first difference at {cell['first_difference_at']}" if not cell["greedy_equal"] else "")
                 + f"; {cell['tokens_ours']} / {cell['tokens_hf']} tokens)")
            if args.sampled:
                show(f"rollout tok/s {name} batch {b}: sampled T=1, ours / transformers (ratio)",
                     f"{cell['tok_s_ours_sampled']} / {cell['tok_s_hf_sampled']} ({cell['ratio_sampled']})")
        del ours, hf
    out["loadavg_end"] = os.getloadavg()
    show("load average start / end", f"{out['loadavg_start']} / {out['loadavg_end']}")
    print()
    print("| dtype | batch | greedy: ours tok/s | transformers tok/s | ratio | greedy equal "
          "| sampled T=1: ours tok/s | transformers tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, c in out["cells"].items():
        print(f"| {key.split('/')[0]} | {c['batch']} | {c['tok_s_ours']} | {c['tok_s_hf']} | {c['ratio']} | "
              f"{c['greedy_equal_rows']}/{c['rows']} | {c.get('tok_s_ours_sampled', '-')} | "
              f"{c.get('tok_s_hf_sampled', '-')} | {c.get('ratio_sampled', '-')} |")
    print()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
