"""Figures for talking to the model (not a test). Prints a table, then one JSON line.

  * decode tokens/s at batch 1: our generator (model/generate.py) against transformers' generate() on the same
    weights exported as a Hugging Face folder; interleaved repetitions, medians, greedy, prefill left out;
  * peak RSS of a chat session (eval_model.py, its 5 built-in turns) in a fresh process;
  * peak RSS of the API server (scripts/serve_openai_api.py) while N clients stream at once.

    OMP_NUM_THREADS=1 python scripts/bench_chat.py           # MiniMind2-small shape (~26M with a 6400 vocab)
    OMP_NUM_THREADS=1 python scripts/bench_chat.py --quick   # fewer tokens and repetitions

The weights are random: speed and memory depend on shapes, not values. The vocabulary is the shipped tokenizer's,
so that eval_model.py and the server run as they would for a user. Other jobs on the machine slow both generators
alike (that is why the repetitions are interleaved), but they do move the absolute figures.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import httpx  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from model.args import add_model_args, config_from_args  # noqa: E402
from model.generate import stream_generate  # noqa: E402
from model.hf_convert import export_hf, save_native  # noqa: E402
from model.model_minimind import MiniMindForCausalLM, count_params  # noqa: E402
from model.tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer  # noqa: E402

# Run a command and print the peak RSS (KiB on Linux) of its process tree's largest member: a wrapper of its own,
# so neither this process nor earlier children count.
PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, *sys.argv[1:]]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")


class Clock(BaseStreamer):
    """transformers calls put() with the prompt, then with each new token: keep the new tokens' times."""

    def __init__(self):
        self.prompt_seen, self.times, self.tokens = False, [], []

    def put(self, value):
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())
        self.tokens.append(int(value.reshape(-1)[0]))

    def end(self):
        pass


def ours(model, ids, n):
    times, tokens = [], []
    for token in stream_generate(model, ids, max_new_tokens=n, temperature=0, eos_token_id=-1):  # -1: never stop
        times.append(time.perf_counter())
        tokens.append(int(token))
    return (n - 1) / (times[-1] - times[0]), tokens


def theirs(hf, ids, n):
    clock = Clock()
    hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                streamer=clock)
    return (n - 1) / (clock.times[-1] - clock.times[0]), clock.tokens


def size_flags(c):
    return [f"--hidden_size={c.hidden_size}", f"--num_hidden_layers={c.num_hidden_layers}",
            f"--num_attention_heads={c.num_attention_heads}", f"--num_key_value_heads={c.num_key_value_heads}",
            f"--intermediate_size={c.intermediate_size}", f"--use_moe={int(c.use_moe)}"]


def peak_rss_mb(*cmd):
    """Peak RSS of `python *cmd` (its output is dropped; the wrapper's last line is the figure)."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *cmd], cwd=REPO, capture_output=True, text=True)
    kib = int(out.stdout.split()[-1])
    if kib < 0:
        raise SystemExit(f"error: `python {' '.join(cmd)}` failed:\n{out.stderr[-2000:]}")
    return kib / 1024


def server_under_load(out_dir, config, clients, max_tokens):
    """(peak RSS MB, wall s, tokens generated) for `clients` concurrent streaming requests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "scripts/serve_openai_api.py", "--out_dir", out_dir, "--port",
                               str(port), *size_flags(config)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("error: the server did not start")
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        tokens = []

        def client(i):
            body = {"messages": [{"role": "user", "content": f"第{i}个问题：你是谁？"}], "max_tokens": max_tokens,
                    "stream": True, "stream_options": {"include_usage": True}}
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
                usage = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {") and '"usage"' in x]
            tokens.append(usage[-1]["usage"]["completion_tokens"])

        t0 = time.time()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
        with open(f"/proc/{server.pid}/status") as f:  # VmHWM: the process's peak resident set so far
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
        return peak, wall, sum(tokens)
    finally:
        server.terminate()
        server.wait(30)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="32 new tokens, 3 repetitions, 8 tokens per client")
    p.add_argument("--new_tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--client_tokens", type=int, default=32)
    add_model_args(p)
    args = p.parse_args()
    if args.quick:
        args.new_tokens, args.reps, args.client_tokens = 32, 3, 8
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tok = load_tokenizer()
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config_from_args(args, vocab_size=len(tok))).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": "请介绍一下你自己。"}], tokenize=False,
                                     add_generation_prompt=True)
    ids = torch.tensor([tok.encode(prompt, add_special_tokens=False)])

    with tempfile.TemporaryDirectory() as tmp:
        hf = AutoModelForCausalLM.from_pretrained(export_hf(model, os.path.join(tmp, "hf"), DEFAULT_TOKENIZER_DIR,
                                                            dtype=torch.float32)).eval()
        runs = {"ours": lambda n: ours(model, ids, n), "transformers": lambda n: theirs(hf, ids, n)}
        for run in runs.values():
            run(4)  # warm-up: first-call allocations and lazy imports
        rates, tokens = {name: [] for name in runs}, {}
        for rep in range(args.reps):
            for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):  # take turns going first
                rate, tokens[name] = runs[name](args.new_tokens)
                rates[name].append(rate)
        del hf, runs

        save_native(model, os.path.join(tmp, f"full_sft_{model.config.hidden_size}.pth"))
        chat_mb = peak_rss_mb("eval_model.py", "--out_dir", tmp, "--interactive", "0", "--history_cnt", "2",
                              "--max_new_tokens", str(args.new_tokens), *size_flags(model.config))
        imports_mb = peak_rss_mb("-c", "import torch, transformers")
        server_mb, wall, served = server_under_load(tmp, model.config, args.clients, args.client_tokens)

    figures = {
        "params_M": round(count_params(model) / 1e6, 2), "vocab": len(tok), "torch_threads": torch.get_num_threads(),
        "prompt_tokens": ids.shape[1], "new_tokens": args.new_tokens, "reps": args.reps,
        "decode_tok_s_ours": round(statistics.median(rates["ours"]), 1),
        "decode_tok_s_transformers": round(statistics.median(rates["transformers"]), 1),
        "same_greedy_tokens": tokens["ours"] == tokens["transformers"],
        "peak_rss_mb_chat": round(chat_mb), "peak_rss_mb_imports_only": round(imports_mb),
        "clients": args.clients, "client_tokens": args.client_tokens, "peak_rss_mb_server": round(server_mb),
        "server_wall_s": round(wall, 2), "server_tok_s": round(served / wall, 1),
    }
    f = figures
    rows = [
        (f"model: {f['params_M']}M params (vocab {f['vocab']}), random weights, torch threads", f["torch_threads"]),
        (f"decode tok/s, ours (stream_generate), batch 1, median of {f['reps']}", f["decode_tok_s_ours"]),
        (f"decode tok/s, transformers generate(), batch 1, median of {f['reps']}", f["decode_tok_s_transformers"]),
        ("same greedy tokens from both", f["same_greedy_tokens"]),
        ("peak RSS MB, eval_model.py chat (5 turns)", f["peak_rss_mb_chat"]),
        ("peak RSS MB, `import torch, transformers` alone", f["peak_rss_mb_imports_only"]),
        (f"peak RSS MB, server with {f['clients']} streaming clients", f["peak_rss_mb_server"]),
        (f"server: {f['clients']} clients x {f['client_tokens']} tokens, wall s", f["server_wall_s"]),
        ("server: aggregate tok/s", f["server_tok_s"]),
    ]
    for name, value in rows:
        print(f"{name:<66} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
