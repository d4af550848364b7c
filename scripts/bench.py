"""Speed of our model against transformers' Llama with the same shapes and weights, measured in one run (not a test).

Prints a line per figure as it is measured, then one JSON object as the last line:
  * training step tokens/s (forward + backward + grad clip + AdamW, as trainer/engine.py does it) of
    MiniMindForCausalLM and LlamaForCausalLM, per preset × dtype, eager and torch.compile'd, all runs of a cell
    interleaved; MFU against the matmul peak this script measures on the same machine with the same threads;
  * decode tokens/s at batch 1 and 8: our stream_generate against transformers' generate() on the folder
    model.hf_convert.export_hf writes (on a CPU with native bf16 also ours with int8 weights, model/quantize.py);
    prefill latency of a prompt;
  * peak RSS of inference (load the weights from disk, generate) in a fresh process;
  * PretrainDataset read throughput, packing off and on, against what training consumes.

    OMP_NUM_THREADS=2 python scripts/bench.py --quick    # < 5 min on 2 cores; says what it shortened
    python scripts/bench.py                              # full shapes, 5 repetitions
    python scripts/bench.py --presets minimind2-small    # on a GPU: batch 32, MFU also against the datasheet,
                                                         # and the projected pretrain_hq epoch (scripts/gpu_check.sh)

The first call of every run is a warm-up (allocations, lazy imports, compilation) and is left out; figures are
medians; each round alternates which model goes first, so another job starting on the machine slows both alike.
compile_s_* is that warm-up call: seconds when inductor's on-disk cache already holds the graphs from an earlier
run, tens of seconds on a cold cache.
Weights are random: speed depends on shapes, not values. Load average is recorded at start and end because other
jobs move the absolute figures (the ratios much less). Headline keys (train_tok_s_ours, decode_ratio, ...) are the
first preset in bfloat16, with *_fp32 twins; `--dtype auto` (the engine's default) picks float32 on a CPU without
native bf16 (where oneDNN emulates bf16 matmuls, several times slower than fp32), so there the fp32 twins are the
ones to read. A full run is far longer than --quick there: emulated-bf16 512-token steps take tens of seconds.
"""
import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from model.device import DTYPES, cpu_has_native_bf16, pick_device, resolve_dtype  # noqa: E402
from model.generate import stream_generate  # noqa: E402
from model.hf_convert import export_hf, llama_config, save_native  # noqa: E402
from model.model_minimind import KVCache, MiniMindForCausalLM, config_from_preset, count_params  # noqa: E402
from model.quantize import quantize_int8  # noqa: E402
from model.tokenizer import load_tokenizer  # noqa: E402
from scripts.bench_chat import peak_rss_mb, theirs  # noqa: E402
from scripts.bench_dataset import bench_getitem, generate_corpus  # noqa: E402
from trainer.engine import build_optimizer  # noqa: E402
from trainer.losses import CausalLMLoss  # noqa: E402

# (batch, seq) per preset: MiniMind2-small at upstream's pretraining length; tiny at the quickstart's pretraining shape.
# On a GPU, MiniMind2-small trains at upstream's own pretraining batch (32) instead: 4 sequences leave it idle.
SHAPES = {"minimind2-small": (4, 512), "tiny": (8, 256)}
CUDA_SHAPES = {"minimind2-small": (32, 512), "tiny": (32, 256)}
# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s), matched against the device name; MFU is given
# against these and against the matmul this script times itself (which falls short of the datasheet).
DATASHEET_BF16_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "A100": 312.0,
                         "L40S": 362.1, "A10G": 70.0, "RTX 4090": 165.2, "RTX 3090": 71.0}
# One epoch of upstream's pretrain_hq.jsonl (~1.6 GB of mostly Chinese text, ~320 tokens a row by upstream's README)
# is ~4.4e8 tokens at ~3.6 bytes a token (3-byte CJK characters, ~1.2 characters a token with a 6,400-entry
# vocabulary): an estimate, so the projection also says which figure it used (--epoch_tokens to change it).
PRETRAIN_HQ_TOKENS = 4.4e8
QUICK_BF16_SEQ = 64  # emulated bf16 trains MiniMind2-small at tens of tok/s: 512-token steps take tens of seconds


# ----------------------------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":  # kernels are asynchronous: stop the clock only when they are done
        torch.cuda.synchronize()


def interleave(runs: dict, reps: int) -> tuple[dict, dict]:
    """Each run is a callable returning its own figure. One warm-up call each (its wall seconds are returned, as
    they hold compilation), then `reps` rounds, reversing the order every round so drift falls on all runs alike."""
    first, figures = {}, {name: [] for name in runs}
    for name, run in runs.items():
        t0 = time.perf_counter()
        run()
        first[name] = time.perf_counter() - t0
    for rep in range(reps):
        for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
            figures[name].append(runs[name]())
    return first, figures


def matmul_gflops(dtype, n, reps, device):
    """Median GFLOP/s of an n×n by n×n matmul (2·n³ FLOPs): the machine's peak for MFU, at these threads.
    Spelled F.linear (x·Wᵀ), the layout of every nn.Linear forward: on an AVX2 CPU, emulated bf16 `a @ b` takes
    a far slower path than `a @ b.T`, so the plain spelling would understate the peak and overstate MFU."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))

    def once():
        sync(device)
        t0 = time.perf_counter()
        F.linear(a, b)
        sync(device)
        return 2 * n ** 3 / (time.perf_counter() - t0) / 1e9

    return statistics.median(interleave({"mm": once}, reps)[1]["mm"])


def datasheet_tflops(device):
    """The bf16 datasheet peak of this CUDA device, or None (CPU, or a GPU not in the table)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)


def flops_per_token(model, seq_len):
    """Training FLOPs per token, forward + backward (Kaplan et al. 2020; PaLM, arXiv:2204.02311 app. B; nanoGPT):
        6·N + 12·L·d·T
    6·N: each matmul weight does one multiply-add (2 FLOPs) per token forward and two backward (input and weight
    gradients). N = decoder layers + lm_head, not the embedding (a lookup); with tied weights the one matrix counts
    once, as lm_head. MoE: the active (top-k) experts only. 12·L·d·T: QKᵀ and attention·V, 2·2·d·T per token and
    layer forward, ×3 with backward, counted over the full T×T square although causal attention needs half of it."""
    c = model.config
    n = count_params(model, active_only=True) - (0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size)
    return 6 * n + 12 * c.num_hidden_layers * c.hidden_size * seq_len


# ----------------------------------------------------------------------------------------------- training
def twin(model):
    """transformers' LlamaForCausalLM with our config (export_model's mapping) and our weights; its attention is
    SDPA by default, like ours (the cell records which one it got)."""
    hf = LlamaForCausalLM(llama_config(model.config))
    hf.load_state_dict(model.state_dict(), strict=True)
    return hf


def train_step_fn(model, batch, seq, dtype, device, compiled):
    """A closure doing one optimizer step on a fixed random batch; returns tokens/s."""
    ours = isinstance(model, MiniMindForCausalLM)
    model = copy.deepcopy(model).to(device).train()
    opt = build_optimizer(model, 1e-4, 0.1, device)  # fused AdamW, as the engine builds it
    fn = torch.compile(model) if compiled else model
    host = torch.randint(3, model.config.vocab_size, (batch, seq))
    if device.type == "cuda":
        host = host.pin_memory()  # pinned: the copy below can overlap the previous step's kernels
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    def step():
        sync(device)
        t0 = time.perf_counter()
        x = host.to(device, non_blocking=True)
        with autocast:
            if ours:  # the training engine's own loss (blockwise, no full logits tensor)
                loss = CausalLMLoss()(fn, {"input_ids": x, "labels": x})[0]
            else:  # what a transformers user computes from the logits: the same summed cross-entropy
                logits = fn(input_ids=x).logits
                loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum")
        (loss / x[:, 1:].numel()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        return batch * seq / (time.perf_counter() - t0)

    return step


def train_cell(model, batch, seq, dtype, device, compile_modes, reps, peak, datasheet=None):
    runs, hf = {}, twin(model)
    for compiled in compile_modes:  # every run gets its own copy of the weights and its own optimizer
        tag = "_compiled" if compiled else ""
        runs["ours" + tag] = train_step_fn(model, batch, seq, dtype, device, compiled)
        runs["hf" + tag] = train_step_fn(hf, batch, seq, dtype, device, compiled)
    cell = {"batch": batch, "seq": seq}
    try:
        first, rates = interleave(runs, reps)
    except Exception as e:  # noqa: BLE001 -- a compiler failure should cost the compiled figures, not the run
        if not any(k.endswith("_compiled") for k in runs):
            raise
        cell["compile_error"] = f"{type(e).__name__}: {e}"[:300]  # (if eager failed, the rerun below raises)
        print(f"compiled runs dropped: {cell['compile_error']}", flush=True)
        first, rates = interleave({k: v for k, v in runs.items() if not k.endswith("_compiled")}, reps)
    fpt = flops_per_token(model, seq)
    cell.update(flops_per_token=fpt, hf_attention=hf.config._attn_implementation)
    for name, r in rates.items():
        cell[f"tok_s_{name}"] = round(statistics.median(r), 1)
        cell[f"mfu_{name}"] = round(statistics.median(r) * fpt / (peak * 1e9), 4)
        if datasheet and dtype == torch.bfloat16:  # the table holds bf16 peaks (TF32's is half of it)
            cell[f"mfu_datasheet_{name}"] = round(statistics.median(r) * fpt / (datasheet * 1e12), 4)
        if name.endswith("_compiled"):
            cell[f"compile_s_{name}"] = round(first[name], 1)
    for tag in ("", "_compiled"):
        if "ours" + tag in rates:
            cell["ratio" + tag] = round(cell[f"tok_s_ours{tag}"] / cell[f"tok_s_hf{tag}"], 3)
    return cell


# ----------------------------------------------------------------------------------------------- inference
def decode_ours(model, ids, n):
    """Tokens/s of all rows after the first token (prefill left out), greedy, never stopping at eos.
    scripts/bench_chat.ours does this for batch 1 only (it reads each step's token with int())."""
    times, row0 = [], []
    for token in stream_generate(model, ids, max_new_tokens=n, temperature=0, eos_token_id=-1):
        times.append(time.perf_counter())
        row0.append(int(token[0]))
    return ids.shape[0] * (n - 1) / (times[-1] - times[0]), row0


def decode_cell(model, hf, batch, prompt_len, new_tokens, reps, device, int8=None):
    """int8: also our generator on model.quantize's weight-only int8 copy (bf16 activations), against the same hf."""
    ids = torch.randint(3, model.config.vocab_size, (batch, prompt_len), device=device)
    tokens = {}

    def run(name, fn):
        def go():
            rate, tokens[name] = fn(ids, new_tokens)
            return rate * (batch if name == "hf" else 1)  # bench_chat.theirs counts one row's tokens
        return go

    runs = {"ours": run("ours", lambda i, n: decode_ours(model, i, n)),
            "hf": run("hf", lambda i, n: theirs(hf, i, n))}
    if int8 is not None:
        runs["ours_int8"] = run("ours_int8", lambda i, n: decode_ours(int8, i, n))
    _, rates = interleave(runs, reps)
    ours, them = statistics.median(rates["ours"]), statistics.median(rates["hf"])
    cell = {"tok_s_ours": round(ours, 1), "tok_s_hf": round(them, 1), "ratio": round(ours / them, 3),
            "same_greedy_tokens_row0": tokens["ours"] == tokens["hf"]}
    if int8 is not None:
        q = statistics.median(rates["ours_int8"])
        cell.update(tok_s_ours_int8=round(q, 1), ratio_int8=round(q / them, 3),
                    int8_greedy_tokens_agree_row0=sum(a == b for a, b in zip(tokens["ours_int8"], tokens["ours"]))
                    / len(tokens["ours"]))
    return cell


@torch.inference_mode()
def prefill_cell(model, hf, prompt_len, reps, device):
    """Seconds from a prompt to the first token's logits, batch 1, each model with its own cache."""
    ids = torch.randint(3, model.config.vocab_size, (1, prompt_len), device=device)

    def timed(forward):
        def go():
            sync(device)
            t0 = time.perf_counter()
            forward()
            sync(device)
            return time.perf_counter() - t0
        return go

    _, secs = interleave({
        "ours": timed(lambda: model(ids, past_key_values=KVCache(model.config, prompt_len), logits_to_keep=1)),
        "hf": timed(lambda: hf(ids, use_cache=True, logits_to_keep=1))}, reps)
    ours, them = statistics.median(secs["ours"]), statistics.median(secs["hf"])
    return {"ms_ours": round(ours * 1e3, 1), "ms_hf": round(them * 1e3, 1), "ratio": round(them / ours, 3)}


# A fresh process loads the weights from disk the way a user's would and generates: its peak RSS is what
# inference costs (bench_chat.peak_rss_mb runs it under a wrapper, so no earlier allocation of ours counts).
RSS_OURS = """import sys, json, torch; sys.path.insert(0, {repo!r})
from model.model_minimind import MiniMindConfig; from model.weights import load_native
from model.generate import generate
c = MiniMindConfig(**json.loads(sys.argv[1])); m = load_native(sys.argv[2], c, getattr(torch, sys.argv[3])).eval()
generate(m.to(sys.argv[4]), torch.randint(3, c.vocab_size, (1, int(sys.argv[5])), device=sys.argv[4]),
         max_new_tokens=int(sys.argv[6]), temperature=0, eos_token_id=-1)"""
RSS_HF = """import sys, torch; from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=getattr(torch, sys.argv[3])).to(sys.argv[4]).eval()
ids = torch.randint(3, m.config.vocab_size, (1, int(sys.argv[5])), device=sys.argv[4])
m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=int(sys.argv[6]), min_new_tokens=int(sys.argv[6]),
           do_sample=False)"""


def rss_cell(model, native_path, hf_dir, dtype_name, device, prompt_len, new_tokens):
    sizes = {k: getattr(model.config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                    "num_key_value_heads", "intermediate_size", "vocab_size")}
    tail = [dtype_name, device.type, str(prompt_len), str(new_tokens)]
    ours = peak_rss_mb("-c", RSS_OURS.format(repo=REPO), json.dumps(sizes), native_path, *tail)
    them = peak_rss_mb("-c", RSS_HF, "-", hf_dir, *tail)  # "-": no config, the folder has one
    return {"mb_ours": round(ours), "mb_hf": round(them)}


# ----------------------------------------------------------------------------------------------- data
def loader_cell(path, tok, seq, seconds):
    """PretrainDataset.__getitem__ supervised tokens/s in one process (the engine's default on a CPU: no workers)."""
    from dataset.lm_dataset import PretrainDataset
    cell = {}
    for packing in (False, True):
        t0 = time.perf_counter()
        ds = PretrainDataset(path, tok, max_seq_len=seq, packing=packing)  # packing: tokenizes the file once
        open_s = time.perf_counter() - t0
        cell["packed" if packing else "unpacked"] = {"open_s": round(open_s, 2),
                                                     "tok_s": round(bench_getitem(ds, seconds)["tokens_per_s"])}
    return cell


# ----------------------------------------------------------------------------------------------- main
def train_shape(batch, seq, dtype_name, args, slow_bf16):
    if args.quick and args.batch_size is None:
        batch = max(1, batch // 4)
    if dtype_name == "bfloat16" and slow_bf16:  # emulated bf16 is slow: one sequence, short under --quick
        batch, seq = 1, (min(seq, QUICK_BF16_SEQ) if args.quick else seq)
    return batch, seq


def add_headline(out, head):
    """The flat keys scripts read: `head` preset, bfloat16 plain and float32 as *_fp32; None where not measured."""
    for name, suffix, mfu in (("bfloat16", "", "mfu_bf16"), ("float32", "_fp32", "mfu_fp32")):
        t, d1 = out["train"].get(f"{head}/{name}", {}), out["decode"].get(f"{head}/{name}/b1", {})
        out.update({f"train_tok_s_ours{suffix}": t.get("tok_s_ours"), f"train_tok_s_hf{suffix}": t.get("tok_s_hf"),
                    f"train_ratio{suffix}": t.get("ratio"), mfu: t.get("mfu_ours"),
                    f"decode_tok_s_ours{suffix}": d1.get("tok_s_ours"), f"decode_tok_s_hf{suffix}": d1.get("tok_s_hf"),
                    f"decode_ratio{suffix}": d1.get("ratio"),
                    **({"decode_tok_s_ours_int8": d1.get("tok_s_ours_int8"), "decode_ratio_int8": d1.get("ratio_int8")}
                       if name == "bfloat16" else {}),
                    f"infer_peak_rss_mb{suffix}": out["rss"].get(name, {}).get("mb_ours")})
    out["headline"] = f"{head}; training at the shape in train['{head}/<dtype>']; decode at batch 1"


def add_epoch_projection(out, head, epoch_tokens):
    """Minutes for one epoch of pretrain_hq at the fastest bf16 training rate measured for `head` (compiled or not;
    packed windows, so every token is text). scripts/gpu_check.sh also times the real trainer, loader included."""
    cell = out["train"].get(f"{head}/bfloat16", {})
    rates = {k.removeprefix("tok_s_"): v for k, v in cell.items() if k.startswith("tok_s_ours")}
    if rates:
        best = max(rates, key=rates.get)
        out["pretrain_hq_epoch"] = {"tokens": epoch_tokens, "run": best, "tok_s": rates[best],
                                    "minutes": round(epoch_tokens / rates[best] / 60, 1)}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="batch ÷4, 3 reps, compile only for the last preset in float32, emulated-bf16 steps of "
                        f"{QUICK_BF16_SEQ} tokens, 16 new tokens, 1 s loader loops, 1 MB corpus")
    p.add_argument("--presets", default="minimind2-small,tiny", help="comma-separated; the first is the headline")
    p.add_argument("--dtypes", default="bfloat16,float32")
    p.add_argument("--compile", type=int, choices=(0, 1), default=1, help="also time torch.compile'd models")
    p.add_argument("--rss", type=int, choices=(0, 1), default=1,
                   help="measure inference peak RSS in fresh processes (each pays seconds of imports)")
    p.add_argument("--reps", type=int, default=None, help="5 (--quick: 3)")
    p.add_argument("--batch_size", type=int, default=None, help="override every preset's training batch")
    p.add_argument("--seq_len", type=int, default=None, help="override every preset's training length")
    p.add_argument("--prompt_len", type=int, default=None, help="prefill length: 256 (--quick: 128); decode "
                   "prompts are 32 tokens")
    p.add_argument("--new_tokens", type=int, default=None, help="64 (--quick: 16)")
    p.add_argument("--loader_seconds", type=float, default=None, help="5 (--quick: 1)")
    p.add_argument("--corpus_mb", type=int, default=None, help="generated pretrain jsonl size: 5 (--quick: 1)")
    p.add_argument("--data_path", default=None, help="a {text} jsonl to read instead of generating one")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--epoch_tokens", type=float, default=PRETRAIN_HQ_TOKENS,
                   help="tokens in one epoch of upstream's pretrain_hq.jsonl, for the projected epoch time")
    args = p.parse_args(argv)
    # explicit flags win over both sets of defaults
    for name, full, quick in (("reps", 5, 3), ("prompt_len", 256, 128), ("new_tokens", 64, 16),
                              ("loader_seconds", 5.0, 1.0), ("corpus_mb", 5, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv=None):
    args = parse(argv)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = pick_device(args.device)
    if device.type == "cuda":  # as trainer/engine.py: fp32 matmuls on tensor cores (TF32)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # On a CPU without AVX512-BF16/AMX, oneDNN emulates bf16: runs there get short shapes (see `shortened`).
    slow_bf16 = device.type == "cpu" and not cpu_has_native_bf16()
    presets, dtypes = args.presets.split(","), args.dtypes.split(",")
    out = {"device": str(device), "torch_threads": torch.get_num_threads(), "loadavg_start": os.getloadavg(),
           "cpu_native_bf16": not slow_bf16 if device.type == "cpu" else None,
           "auto_dtype": str(resolve_dtype("auto", device)).removeprefix("torch."), "quick": args.quick,
           "reps": args.reps, "shortened": [], "peak_gflops": {}, "train": {}, "decode": {}, "prefill": {},
           "rss": {}, "loader": {}, "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "datasheet_bf16_tflops": datasheet_tflops(device)}
    shortened = out["shortened"]

    def show(name, value):
        print(f"{name:<58} {value}", flush=True)

    # ---- the matmul peak MFU is measured against
    n = (8192 if device.type == "cuda" else 2048) // (2 if args.quick else 1)
    for name in dtypes:
        out["peak_gflops"][name] = round(matmul_gflops(DTYPES[name], n, args.reps, device), 1)
        show(f"peak matmul GFLOP/s {name} ({n}x{n}, median of {args.reps})", out["peak_gflops"][name])

    if args.quick:
        shortened.append(f"--quick: {args.reps} repetitions, {args.new_tokens} new tokens per decode, "
                         f"{args.prompt_len}-token prefill, {args.loader_seconds:g} s loader loops on a "
                         f"{args.corpus_mb} MB corpus")
    if args.compile and args.quick:
        shortened.append(f"torch.compile runs only for {presets[-1]} float32 (compiling takes ~20-80 s a model on "
                         f"a 2-core CPU)")
    tok = load_tokenizer()
    data = args.data_path or os.path.join(tempfile.gettempdir(), "minimind_bench",
                                          f"pretrain_synth_{args.corpus_mb}mb.jsonl")
    if not os.path.exists(data):
        generate_corpus(data, args.corpus_mb)  # kept for the next run, as bench_dataset.py does

    with tempfile.TemporaryDirectory() as tmp:
        for pi, preset in enumerate(presets):
            torch.manual_seed(0)
            model = MiniMindForCausalLM(config_from_preset(preset))
            p_batch, p_seq = (CUDA_SHAPES if device.type == "cuda" else SHAPES).get(preset, (4, 512))
            p_batch, p_seq = args.batch_size or p_batch, args.seq_len or p_seq
            # ---- training
            for name in dtypes:
                batch, seq = train_shape(p_batch, p_seq, name, args, slow_bf16)
                if (batch, seq) != (p_batch, p_seq):
                    shortened.append(f"train {preset} {name}: batch {batch} x seq {seq} instead of "
                                     f"{p_batch} x {p_seq}")
                compile_on = args.compile and (not args.quick or (pi == len(presets) - 1 and name == "float32"))
                cell = train_cell(model, batch, seq, DTYPES[name], device, [False, True] if compile_on else [False],
                                  args.reps, out["peak_gflops"][name], out["datasheet_bf16_tflops"])
                out["train"][f"{preset}/{name}"] = cell
                for k in ("", "_compiled"):
                    if f"tok_s_ours{k}" in cell:
                        show(f"train tok/s {preset} {name}{k.replace('_', ' ')} {batch}x{seq}: ours / hf (ratio)",
                             f"{cell[f'tok_s_ours{k}']} / {cell[f'tok_s_hf{k}']} ({cell['ratio' + k]})  "
                             f"MFU {cell[f'mfu_ours{k}']:.1%}" + (f" (datasheet {cell[f'mfu_datasheet_ours{k}']:.1%})"
                                                                  if f"mfu_datasheet_ours{k}" in cell else ""))
            # ---- inference: the exported folder, loaded back by transformers in each dtype
            hf_dir = export_hf(model, os.path.join(tmp, preset, "hf"), dtype=torch.float32)
            native = os.path.join(tmp, preset, "model.pth")
            save_native(model, native)
            for name in dtypes:
                ours = copy.deepcopy(model).to(device, DTYPES[name]).eval()
                hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=DTYPES[name]).to(device).eval()
                int8 = None
                if device.type == "cpu" and name == "bfloat16" and not slow_bf16:
                    try:
                        int8 = quantize_int8(copy.deepcopy(model))
                    except (RuntimeError, ValueError) as e:  # the kernel's self-check refused this CPU / torch
                        out["int8_error"] = str(e)
                        show("int8 decode skipped", e)
                for b in (1, 8):
                    cell = decode_cell(ours, hf, b, 32, args.new_tokens, args.reps, device, int8)
                    out["decode"][f"{preset}/{name}/b{b}"] = cell
                    show(f"decode tok/s {preset} {name} batch {b}: ours / hf (ratio)",
                         f"{cell['tok_s_ours']} / {cell['tok_s_hf']} ({cell['ratio']})")
                    if int8 is not None:
                        show(f"decode tok/s {preset} int8 weights batch {b}: ours / hf {name} (ratio)",
                             f"{cell['tok_s_ours_int8']} / {cell['tok_s_hf']} ({cell['ratio_int8']})")
                cell = prefill_cell(ours, hf, args.prompt_len, args.reps, device)
                out["prefill"][f"{preset}/{name}"] = cell
                show(f"prefill ms {preset} {name} {args.prompt_len} tokens: ours / hf", f"{cell['ms_ours']} / "
                     f"{cell['ms_hf']}")
                del ours, hf
                if pi == 0 and args.rss:  # memory depends on size only: the headline preset is enough
                    cell = rss_cell(model, native, hf_dir, name, device, 32, args.new_tokens)
                    out["rss"][name] = cell
                    show(f"inference peak RSS MB {preset} {name}: ours / hf", f"{cell['mb_ours']} / {cell['mb_hf']}")
            # ---- data: can the loader keep up with training at this length?
            cell = loader_cell(data, tok, p_seq, args.loader_seconds)
            fp32 = out["train"].get(f"{preset}/float32", {}).get("tok_s_ours")
            for k in ("unpacked", "packed"):
                if fp32:
                    cell[k]["x_train_fp32"] = round(cell[k]["tok_s"] / fp32, 1)
                show(f"loader supervised tok/s {preset} seq {p_seq} {k} (x training fp32)",
                     f"{cell[k]['tok_s']} ({cell[k].get('x_train_fp32')})")
            out["loader"][preset] = cell

    add_headline(out, presets[0])
    add_epoch_projection(out, presets[0], args.epoch_tokens)
    out["loadavg_end"] = os.getloadavg()
    show("load average start / end", f"{out['loadavg_start']} / {out['loadavg_end']}")
    if "pretrain_hq_epoch" in out:
        e = out["pretrain_hq_epoch"]
        show(f"one pretrain_hq epoch ({e['tokens']:.2g} tokens) at {e['run']} bf16, minutes", e["minutes"])
    for line in shortened:
        show("shortened", line)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
