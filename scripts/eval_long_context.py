"""Loss by position past the training length, with plain RoPE and with YaRN. Writes a PNG and a JSON, prints a table.

Documents from a {"text"} jsonl are joined as bos+doc+eos, the stream packed pretraining cuts into windows, and cut
into rows of --context_len tokens (default 4× --train_len). Each row is scored in one forward pass; the NLL of the
token at position p (predicted from positions 0..p-1) goes into the bucket of p. A model that has only seen
positions < train_len usually gets worse past it; YaRN (--inference_rope_scaling) is meant to stretch that window.

    python scripts/eval_long_context.py --data_path out/world/pretrain_heldout.jsonl --preset tiny \\
        --tokenizer_dir out/tokenizer --train_len 256          # out/pretrain_128.pth, 1024-token rows
    python scripts/eval_long_context.py --data_path heldout.jsonl --load_from out/hf --train_len 512

The YaRN curve stretches the window the model was trained on (--yarn_original, default --train_len) by
--yarn_factor (default context_len / train_len). The config's own setting (2048 ×4, what eval_model.py
--inference_rope_scaling 1 uses) is `--yarn_original 2048 --yarn_factor 4`.
"""
import argparse
import json
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dataset.jsonl_files import iter_texts  # noqa: E402
from model.args import add_source_args  # noqa: E402
from model.device import pick_device  # noqa: E402
from model.loading import ModelSource, load_model  # noqa: E402

CURVES = ("plain", "yarn")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p, weight="pretrain")
    g = p.add_argument_group("long context")
    g.add_argument("--data_path", required=True, help='jsonl with one {"text": ...} per line')
    g.add_argument("--train_len", type=int, default=512, help="the max_seq_len the model was trained at")
    g.add_argument("--context_len", type=int, default=None, help="tokens per scored row (default 4× train_len)")
    g.add_argument("--bucket", type=int, default=64, help="positions per point of the curve")
    g.add_argument("--num_seqs", type=int, default=8, help="rows to score (fewer if the file runs out)")
    g.add_argument("--batch_size", type=int, default=4)
    g.add_argument("--yarn_factor", type=float, default=None, help="default context_len / train_len")
    g.add_argument("--yarn_original", type=int, default=None, help="YaRN's original window (default train_len)")
    g.add_argument("--save_dir", default="out/long_context")
    return p


def load_minimind(source: ModelSource, device):
    """Our MiniMindForCausalLM, whose RoPE can be switched in place; an exported folder (a LlamaForCausalLM, or our
    MoE through remote code) is converted back to it."""
    if source.load_from:
        from transformers import AutoTokenizer

        from model.hf_convert import import_hf
        return import_hf(source.load_from).to(device).eval(), AutoTokenizer.from_pretrained(source.load_from)
    model, tokenizer, _ = load_model(source, device)
    return model, tokenizer


def build_rows(tokenizer, path: str, n_rows: int, length: int) -> torch.Tensor:
    """[≤n_rows, length] token ids cut from the bos+doc+eos stream of the file, in file order."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    stream, rows = [], []
    for text in iter_texts(path):
        stream += [bos] + tokenizer.encode(text, add_special_tokens=False) + [eos]
        while len(stream) >= length and len(rows) < n_rows:
            rows.append(stream[:length])
            stream = stream[length:]
        if len(rows) == n_rows:
            break
    if not rows:
        raise ValueError(f"{path}: {len(stream)} tokens in all, fewer than one row of {length}; "
                         "pass a bigger file or a smaller --context_len")
    return torch.tensor(rows)


def set_rope(model, yarn: dict | None) -> float:
    """Plain RoPE (None) or YaRN with these settings, in place; returns the attention scale. Only the rotation
    frequencies and the cos/sin scale change, built from the config the way MiniMindModel builds them."""
    c = model.config
    c.inference_rope_scaling = yarn is not None
    if yarn:
        c.yarn = {**c.yarn, **yarn}
    model.model.reset_rope()
    return model.model.rope_scale


@torch.inference_mode()
def token_nll(model, ids: torch.Tensor, batch_size: int = 4, device="cpu") -> torch.Tensor:
    """[rows, length-1]: column i is the NLL (nats) of the token at position i+1 given positions 0..i."""
    model.eval()
    out = []
    for chunk in ids.split(batch_size):
        chunk = chunk.to(device)
        logits = model(chunk).logits.float()
        out.append(F.cross_entropy(logits[:, :-1].transpose(1, 2), chunk[:, 1:], reduction="none").cpu())
    return torch.cat(out)


def bucket_means(nll: torch.Tensor, bucket: int) -> list[tuple[int, int, float, int]]:
    """(first position, last position + 1, mean NLL, tokens) per bucket of target positions."""
    pos = torch.arange(1, nll.shape[1] + 1)
    out = []
    for start in range(0, nll.shape[1] + 1, bucket):
        sel = (pos >= start) & (pos < start + bucket)
        if sel.any():  # position 0 is never a target, so a bucket of 1 starting there is empty
            out.append((start, min(start + bucket, nll.shape[1] + 1), float(nll[:, sel].mean()),
                        int(sel.sum()) * len(nll)))
    return out


def split_means(nll: torch.Tensor, train_len: int) -> dict:
    """Mean NLL and perplexity of the positions inside the training window and past it."""
    pos = torch.arange(1, nll.shape[1] + 1)
    out = {}
    for name, sel in (("within", pos < train_len), ("beyond", pos >= train_len)):
        if sel.any():
            m = float(nll[:, sel].mean())
            out[name] = {"nll": m, "ppl": math.exp(min(m, 50))}
    return out


def plot(result: dict, path: str):
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    mids = [(b["start"] + b["end"] - 1) / 2 for b in result["buckets"]]
    y = result["yarn"]
    labels = {"plain": "plain RoPE", "yarn": f"YaRN ×{y['factor']:g} (window {y['original_max_position_embeddings']})"}
    for curve in CURVES:
        ax.plot(mids, [b[f"nll_{curve}"] for b in result["buckets"]], marker="o", ms=3, label=labels[curve])
    ax.axvline(result["train_len"], color="grey", ls="--", label=f"training length {result['train_len']}")
    ax.set_xlabel("position in the context (tokens)")
    ax.set_ylabel("mean NLL (nats/token)")
    ax.set_title(f"{os.path.basename(result['model'])} on {os.path.basename(result['data_path'])}: "
                 f"{result['rows']} rows × {result['context_len']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(model, tokenizer, args, device, model_name: str) -> dict:
    context_len = args.context_len or 4 * args.train_len
    yarn = {"factor": args.yarn_factor or context_len / args.train_len,
            "original_max_position_embeddings": args.yarn_original or args.train_len}
    ids = build_rows(tokenizer, args.data_path, args.num_seqs, context_len)
    nll = {"plain": None, "yarn": None}
    set_rope(model, None)  # whatever --inference_rope_scaling said, the plain curve is plain
    nll["plain"] = token_nll(model, ids, args.batch_size, device)
    attn_scale = set_rope(model, yarn)
    nll["yarn"] = token_nll(model, ids, args.batch_size, device)
    set_rope(model, None)
    per_curve = {c: bucket_means(nll[c], args.bucket) for c in CURVES}
    buckets = []
    for i, (start, end, _, n) in enumerate(per_curve["plain"]):
        b = {"start": start, "end": end, "tokens": n}
        for c in CURVES:
            b[f"nll_{c}"] = per_curve[c][i][2]
            b[f"ppl_{c}"] = math.exp(min(b[f"nll_{c}"], 50))
        buckets.append(b)
    return {"model": model_name, "data_path": args.data_path,
            "train_len": args.train_len, "context_len": context_len, "rows": len(ids), "bucket": args.bucket,
            "yarn": {**yarn, "beta_fast": model.config.yarn["beta_fast"], "beta_slow": model.config.yarn["beta_slow"],
                     "attention_scale": attn_scale},
            "summary": {c: split_means(nll[c], args.train_len) for c in CURVES}, "buckets": buckets}


def print_table(r: dict):
    print(f"{r['model']} on {r['data_path']}: {r['rows']} rows × {r['context_len']} tokens, trained at "
          f"{r['train_len']}, YaRN ×{r['yarn']['factor']:g} from {r['yarn']['original_max_position_embeddings']}")
    print(f"{'positions':>11} {'tokens':>7} {'NLL plain':>10} {'NLL YaRN':>9} {'ppl plain':>10} {'ppl YaRN':>9}")
    for b in r["buckets"]:
        past = "  (past training length)" if b["start"] >= r["train_len"] else ""
        print(f"{b['start']:>5}-{b['end'] - 1:<5} {b['tokens']:>7} {b['nll_plain']:>10.3f} {b['nll_yarn']:>9.3f} "
              f"{b['ppl_plain']:>10.2f} {b['ppl_yarn']:>9.2f}{past}")
    for part in ("within", "beyond"):
        if part in r["summary"]["plain"]:
            p, y = r["summary"]["plain"][part], r["summary"]["yarn"][part]
            print(f"{part:>6} {r['train_len']}: NLL plain {p['nll']:.3f} (ppl {p['ppl']:.2f}), "
                  f"YaRN {y['nll']:.3f} (ppl {y['ppl']:.2f})")


def main(argv=None):
    args = build_parser().parse_args(argv)
    for flag in ("train_len", "context_len", "bucket", "num_seqs", "batch_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise SystemExit(f"error: --{flag} must be at least 1")
    device = pick_device(args.device, allow_mps=False)
    source = ModelSource.from_args(args)
    try:
        model, tokenizer = load_minimind(source, device)
        result = evaluate(model, tokenizer, args, device, source.describe(model.config))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    os.makedirs(args.save_dir, exist_ok=True)
    png, js = os.path.join(args.save_dir, "long_context.png"), os.path.join(args.save_dir, "long_context.json")
    with open(js, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    plot(result, png)
    print_table(result)
    print(json.dumps({"png": png, "json": js, "train_len": result["train_len"], "context_len": result["context_len"],
                      "yarn": result["yarn"], "summary": result["summary"]}))
    return result


if __name__ == "__main__":
    main()
