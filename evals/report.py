"""out/report.md + out/report.json + loss-curve PNGs from a results dict and the runs' metrics jsonl files.

    python -m evals.report --out_dir out      # redraw the report from out/report.json and out/logs/*.jsonl
"""
import argparse
import json
import os
import subprocess


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _read_log(log) -> list[dict] | None:
    if not log or not os.path.isfile(log):
        return None
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def _save_plot(out_dir: str, name: str, rows: list[dict], series: dict, **labels) -> str:
    """One PNG of metrics-log columns against the step: series {column: legend label or None}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    steps = [r["step"] for r in rows]
    for column, label in series.items():
        ax.plot(steps, [r[column] for r in rows], label=label)
    ax.set(**labels)
    ax.grid(alpha=0.3)
    if any(series.values()):
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=100)
    plt.close(fig)
    return name


def plot_curves(out_dir: str, stages: dict) -> list[str]:
    pngs = []
    for stage, info in stages.items():
        rows = _read_log(info.get("metrics"))
        if rows is not None:
            pngs.append(_save_plot(out_dir, f"loss_{stage}.png", rows, {"loss": None}, xlabel="optimizer step",
                                   ylabel="train loss", title=f"{stage} loss"))
    return pngs


def plot_rl_curves(out_dir: str, report: dict) -> list[str]:
    """Reward and sampled answer accuracy per logged step of the RL stages (grpo, ppo)."""
    pngs = []
    for stage in ("grpo", "grpo_facts", "ppo_facts", "agent"):
        rows = _read_log(report.get(stage, {}).get("metrics"))
        if rows is not None:
            series = {"reward": "reward"}
            if rows and "reward/answer" in rows[0]:
                series["reward/answer"] = "sampled answers right"
            pngs.append(_save_plot(out_dir, f"reward_{stage}.png", rows, series,
                                   xlabel="step (one batch of rollouts)", title=f"{stage}: training prompts"))
    return pngs


def pct(x):
    return f"{100 * x:.1f}%"


def rl_rows(name: str, x: dict) -> list[tuple]:
    return [(name, "sampled training reward, first → last fifth of the run",
             f"{x['reward_first']:.3f} → {x['reward_last']:.3f}", ""),
            (name, "KL to the starting model per token, last fifth (max over the run)",
             f"{x['kl_last']:.4f} ({x['kl_max']:.4f})", "")]


def post_training_lines(r: dict) -> list[str]:
    """The --all stages: one row per claim, the measured figure next to the baseline it is judged against."""
    rows = []
    if "lora" in r:
        x = r["lora"]
        rows += [("LoRA", "identity answers, held-out phrasings", pct(x["identity_acc"]), pct(x["identity_acc_base"])),
                 ("LoRA", "held-out fact QA kept", pct(x["qa_exact_match"]), pct(x["qa_exact_match_base"]))]
    if "dpo" in r:
        x = r["dpo"]
        rows += [("DPO", "preference accuracy, held-out pairs", pct(x["pref_acc"]), "50% (reference)")]
        what = {"wrong": "a fluent wrong fact", "hedge": "a hedge with no answer", "repeat": "the answer repeated"}
        rows += [("DPO", f"… where the rejected reply is {what.get(kind, kind)}", pct(acc), "")
                 for kind, acc in x.get("pref_acc_by_rejected", {}).items()]
        rows += [("DPO", "wrong or rambling replies, held-out questions", pct(x["quality_dpo"]["wrong_or_rambling"]),
                  pct(x["quality_sft"]["wrong_or_rambling"]))]
    if "distill" in r:
        x = r["distill"]
        rows += [("distillation", "student held-out loss (KD vs labels only)", f"{x['heldout_loss_kd']:.3f}",
                  f"{x['heldout_loss_ce']:.3f}"),
                 ("distillation", "student held-out QA", pct(x["qa_exact_match_kd"]), pct(x["qa_exact_match_ce"]))]
    if "reason" in r:
        x = r["reason"]
        rows += [("reasoning", "held-out accuracy (traces vs direct answers)", pct(x["acc_trace"]),
                  pct(x["acc_direct"])),
                 ("reasoning", "well-formed <think>/<answer> replies", pct(x["well_formed_trace"]), "")]
    if "moe" in r and "dense" in r:
        m, d = r["moe"], r["dense"]
        rows += [("MoE", f"held-out loss at {m['active_params'] / 1e6:.2f}M active params (MoE vs dense)",
                  f"{m['heldout_loss']:.3f}", f"{d['heldout_loss']:.3f}"),
                 ("MoE", "expert load, worst layer (max/mean tokens; 1 = even)",
                  f"{m['expert_load']['max_over_mean_worst_layer']:.2f}", "")]
    if "grpo" in r:
        x = r["grpo"]
        rows += [("GRPO, arithmetic", "held-out accuracy (vs the reasoning model it starts from)", pct(x["acc"]),
                  pct(x["acc_start"]))]
        rows += rl_rows("GRPO, arithmetic", x)
    for key, name in (("grpo_facts", "GRPO, facts"), ("ppo_facts", "PPO, facts")):
        if key in r:
            x = r[key]
            rows += [(name, "held-out fact QA (vs the SFT model)", pct(x["qa"]["all"]), pct(x["qa_start"]["all"]))]
            rows += [(name, f"… {kind}", pct(x["qa"][kind]), pct(x["qa_start"][kind]))
                     for kind in x["qa"] if kind.endswith("paraphrase")]
            rows += rl_rows(name, x)
    if "tools" in r:
        x = r["tools"]
        for kind, what in (("arithmetic", "held-out arithmetic"), ("fact", "held-out people's facts"),
                           ("chain", "two-step tasks, held-out people")):
            if kind in x:
                rows += [("tools", f"{what}: correct with tools (vs the same model without)", pct(x[kind]["correct"]),
                          pct(x[kind]["correct_without_tools"])),
                         ("tools", f"{what}: right tool / valid arguments",
                          f"{pct(x[kind]['right_tool'])} / {pct(x[kind]['args_valid'])}", "")]
                rows += [("tools", f"… {sub}", pct(v), "") for sub, v in x[kind].get("correct_by", {}).items()]
        if "none" in x:
            rows += [("tools", "false tool calls on prompts that need none", pct(x["none"]["false_call"]), "")]
    if "agent" in r and "tools" in r:
        x = r["agent"]
        rows += [("agentic RL", "two-step tasks, held-out people (vs the tool-SFT model)", pct(x["chain"]["correct"]),
                  pct(r["tools"]["chain"]["correct"]))]
        start_by = r["tools"]["chain"].get("correct_by", {})
        rows += [("agentic RL", f"… {sub}", pct(v), pct(start_by[sub]) if sub in start_by else "")
                 for sub, v in x["chain"].get("correct_by", {}).items()]
        rows += [("agentic RL", "false tool calls on prompts that need none", pct(x["none"]["false_call"]),
                  pct(r["tools"]["none"]["false_call"]))]
        rows += rl_rows("agentic RL", x)
    if not rows:
        return []
    return ["", "## Post-training stages (`--all`)", "", "| stage | measure | result | baseline |", "|---|---|---|---|"] \
        + [f"| {a} | {b} | **{c}** | {d} |" for a, b, c, d in rows]


def write_report(out_dir: str, report: dict):
    report.setdefault("environment", {})["git_commit"] = git_commit()
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    pngs = plot_curves(out_dir, report.get("stages", {})) + plot_rl_curves(out_dir, report)
    env = report["environment"]
    lines = ["# MiniMind quickstart report", "",
             f"torch {env.get('torch')} · {env.get('device')} ({env.get('threads')} threads) · "
             f"commit {env.get('git_commit')} · preset `{report.get('preset')}` · "
             f"total wall time **{report.get('wall_time_s', 0):.0f} s**", "",
             "| stage | wall time | steps | supervised tokens | supervised tokens/s | final train loss |", "|---|---|---|---|---|---|"]
    for stage, s in report.get("stages", {}).items():
        lines.append(f"| {stage} | {s.get('wall_time_s', 0):.0f} s | {s.get('steps', '')} | {s.get('tokens', '')} | "
                     f"{s['tok_per_s']:.0f} | {s['final_loss']:.3f} |" if "final_loss" in s else
                     f"| {stage} | {s.get('wall_time_s', 0):.0f} s | | | | |")
    if "pretrain" in report:
        p = report["pretrain"]
        lines += ["", "## Pretraining", "",
                  f"Held-out loss **{p['heldout_loss']:.3f}** nats/token (perplexity {p['ppl']:.1f}, "
                  f"{p['bpb']:.3f} bits per byte) on fresh bio renderings never trained on."]
    if "sft" in report:
        s = report["sft"]
        lines += ["", "## SFT: held-out QA (people whose Q&A never appeared in training)", "",
                  f"Exact match **{pct(s['qa_exact_match'])}** (train-half people: {pct(s['qa_train_exact_match'])}"
                  + (f"; the same model with int8 weights: {pct(s['qa_exact_match_int8'])}"
                     if s.get("qa_exact_match_int8") is not None else "") + ").",
                  "", "| language / question kind | accuracy |", "|---|---|"]
        lines += [f"| {k} | {pct(v)} |" for k, v in s["qa_by_group"].items() if k != "all"]
        lines += ["", "| question | expected | reply | ok |", "|---|---|---|---|"]
        lines += [f"| {e['q']} | {e['expected']} | {e['reply'].replace('|', '/')} | {'✓' if e['ok'] else '✗'} |"
                  for e in s.get("qa_examples", [])]
    if "exam" in report:
        e = report["exam"]
        lines += ["", "## Multiple-choice exam (C-Eval layout, next-token logits over A/B/C/D)", "",
                  f"Accuracy **{pct(e['accuracy'])}** on {e['n']} questions (chance 25%).", "",
                  "| subject | accuracy |", "|---|---|"]
        lines += [f"| {k} | {pct(v)} |" for k, v in e["by_subject"].items()]
    lines += post_training_lines(report)
    if report.get("samples"):
        lines += ["", "## Sample chats (SFT model, greedy)", ""]
        for s in report["samples"]:
            lines += [f"- **user:** {s['user']}  ", f"  **assistant:** {s['assistant']}"]
    if pngs:
        lines += ["", "## Loss and reward curves", ""] + [f"![{p}]({p})" for p in pngs]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Redraw out/report.md from out/report.json")
    ap.add_argument("--out_dir", default="out")
    a = ap.parse_args()
    with open(os.path.join(a.out_dir, "report.json")) as f:
        write_report(a.out_dir, json.load(f))
    print(f"wrote {a.out_dir}/report.md")
