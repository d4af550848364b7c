"""The post-training stages of `python scripts/quickstart.py --all`, each with the number that shows it worked.

Every stage runs the user-facing script (train_lora.py, train_dpo.py, ...) on the embedded world, then measures:
  lora     identity answers on held-out phrasings, and held-out fact QA kept (vs the SFT model)
  dpo      preference accuracy on held-out pairs, and wrong/rambling replies on held-out questions (vs SFT)
  distill  a smaller student pretrained with the teacher's logits vs the same student on labels only
  reason   held-out arithmetic accuracy when trained on <think> traces vs on direct answers, same budget
  moe      MoE vs dense pretraining at equal active parameters and tokens, and the experts' load
  grpo     held-out arithmetic accuracy after GRPO on the reasoning model's own samples (vs that model), the KL
  grpo_facts / ppo_facts   held-out fact QA (paraphrased questions above all) after GRPO / PPO on train-half
           people's questions (vs the SFT model), the KL
  tools    tool-use SFT: held-out arithmetic and facts answered through the calculator / lookup_person, two-step
           chains, false calls on prompts that need no tool — with tools vs the same questions without
  agent    two-step tool tasks about held-out people after agentic RL (vs the tool-SFT model it starts from)
Budgets are CPU-sized; the stage scripts' defaults are upstream's GPU recipes.
"""
import copy
import json
import os
import time

from dataset.jsonl_files import read_jsonl

from evals.answers import check_answer, check_fact_answer
from evals.expert_load import expert_load
from evals.lm_loss import heldout_loss
from evals.preference import preference_accuracy
from evals.qa import answer_quality, chat_replies, exact_match
from evals.reasoning import reasoning_accuracy
from evals.toolcall import evaluate_tool_use, load_items
from model.model_lora import load_lora_file
from model.model_minimind import config_from_preset, count_params
from model.weights import load_native, weight_path
from toolcall.world import read_world_people

# A quarter-size student for distillation: 64 wide, 4 layers (~0.3M parameters; the tiny teacher has ~1M).
STUDENT = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
               intermediate_size=192)
# MoE at the dense tiny preset's ACTIVE size: 4 experts of FFN width 128, top-2, plus one shared expert
# = 3 × 128 active = the dense FFN width 384.
MOE = dict(use_moe=1, intermediate_size=128)


def flags(size: dict) -> list[str]:
    return [f"--{k}={v}" for k, v in size.items()]


class Stages:
    def __init__(self, args, sh, common, out, world, tokenizer, config, sft_by_kind: dict):
        """The quickstart's flags (args), its way to run a stage script (sh) with the flags every stage shares
        (common), its output and world folders, the tokenizer and model config, and the SFT model's held-out QA
        (overall and by language/kind)."""
        self.args, self.sh, self.common, self.out, self.world = args, sh, common, out, world
        self.tokenizer, self.config = tokenizer, config
        self.sft_by_kind, self.sft_qa = sft_by_kind, sft_by_kind["all"]
        self.heldout_qa = read_jsonl(os.path.join(world, "qa_heldout.jsonl"))

    def native(self, stage, **size):
        """Native weights of `stage`: the quickstart's model, or that preset with `size` changed."""
        config = self.config
        if size:
            config = config_from_preset(self.args.preset, vocab_size=len(self.tokenizer), **size)
        return load_native(weight_path(self.out, stage, config.hidden_size, config.use_moe), config)

    def qa(self, model, records=None):
        records = records or self.heldout_qa
        return records, chat_replies(model, self.tokenizer, [r["conversations"] for r in records])

    def lora(self):
        a = self.args
        self.sh("train_lora.py", *self.common, "--data_path", os.path.join(self.world, "lora_identity.jsonl"),
                  "--from_weight", "full_sft", "--batch_size", "16", "--max_seq_len", "128", "--learning_rate",
                  str(a.lora_lr), "--warmup_iters", "5", "--max_steps", str(a.lora_steps), "--lora_rank", "16")
        base = self.native("full_sft")
        tuned = load_lora_file(copy.deepcopy(base), weight_path(os.path.join(self.out, "lora"), "lora_identity",
                                                                 self.config.hidden_size, False))
        ident = read_jsonl(os.path.join(self.world, "lora_identity_heldout.jsonl"))
        return {"identity_acc": exact_match(*self.qa(tuned, ident), check_answer)["all"],
                "identity_acc_base": exact_match(*self.qa(base, ident), check_answer)["all"],
                "qa_exact_match": exact_match(*self.qa(tuned), check_fact_answer)["all"],
                "qa_exact_match_base": self.sft_qa}

    def dpo(self):
        a = self.args
        self.sh("train_dpo.py", *self.common, "--data_path", os.path.join(self.world, "dpo.jsonl"),
                  "--from_weight", "full_sft", "--batch_size", "8", "--max_seq_len", "128", "--learning_rate",
                  str(a.dpo_lr), "--warmup_iters", "5", "--max_steps", str(a.dpo_steps), "--beta", str(a.dpo_beta))
        sft, dpo = self.native("full_sft"), self.native("dpo")
        pairs = read_jsonl(os.path.join(self.world, "dpo_heldout.jsonl"))
        pref = preference_accuracy(dpo, sft, self.tokenizer, pairs)
        # by what the rejected reply does wrong: a fluent wrong fact needs the model to know the fact
        by_kind = {kind: preference_accuracy(dpo, sft, self.tokenizer,
                                             [p for p in pairs if p["rejected_kind"] == kind])["pref_acc"]
                   for kind in sorted({p["rejected_kind"] for p in pairs})}
        return {"pref_acc": pref["pref_acc"], "mean_margin": pref["mean_margin"], "pref_acc_by_rejected": by_kind,
                "quality_sft": answer_quality(*self.qa(sft), check_fact_answer),
                "quality_dpo": answer_quality(*self.qa(dpo), check_fact_answer),
                "qa_exact_match": exact_match(*self.qa(dpo), check_fact_answer)["all"]}

    def distill(self):
        """Student from scratch on the pretrain corpus for the same steps: α=0.3 (mostly the teacher's soft
        targets) vs α=1 (labels only — the same script, so only the loss differs)."""
        a, out = self.args, {}
        for name, alpha in (("kd", a.distill_alpha), ("ce", 1.0)):
            self.sh("train_distillation.py", *self.common, *flags(STUDENT), "--data_path",
                      os.path.join(self.world, "pretrain.jsonl"), "--from_weight", "none", "--save_weight",
                      f"student_{name}", "--teacher_weight", "pretrain", "--teacher_preset", a.preset,
                      "--alpha", str(alpha), "--temperature", "1.0", "--batch_size", "8", "--max_seq_len",
                      str(a.seq_len), "--learning_rate", str(a.pretrain_lr), "--warmup_iters", "10",
                      "--max_steps", str(a.distill_steps))
            model = self.native(f"student_{name}", **STUDENT)
            held = heldout_loss(model, self.tokenizer, os.path.join(self.world, "pretrain_heldout.jsonl"),
                                max_seq_len=a.seq_len)
            out[f"heldout_loss_{name}"] = held["loss"]
            out[f"qa_exact_match_{name}"] = exact_match(*self.qa(model), check_fact_answer)["all"]
        out["student_params"] = count_params(model)
        return out

    def reason(self):
        a, out = self.args, {}
        for name, data in (("trace", "reason.jsonl"), ("direct", "reason_direct.jsonl")):
            self.sh("train_distill_reason.py", *self.common, "--data_path", os.path.join(self.world, data),
                      "--from_weight", "full_sft", "--save_weight", f"reason_{name}", "--batch_size", "16",
                      "--max_seq_len", "160", "--learning_rate", str(a.reason_lr), "--warmup_iters", "5",
                      "--max_steps", str(a.reason_steps), "--tag_weight", "10")
            res = reasoning_accuracy(self.native(f"reason_{name}"), self.tokenizer,
                                     read_jsonl(os.path.join(self.world, "reason_heldout.jsonl")))
            out[f"acc_{name}"], out[f"well_formed_{name}"] = res["acc"], res["well_formed"]
            out[f"examples_{name}"] = res["examples"]
        return out

    def moe(self):
        """Both from scratch, same steps × batch × length (so the same tokens), equal active parameters."""
        a, res = self.args, {}
        for name, size in (("dense", {}), ("moe", MOE)):
            self.sh("train_pretrain.py", *self.common, *flags(size), "--data_path",
                      os.path.join(self.world, "pretrain.jsonl"), "--packing", "1", "--save_weight", "pretrain_short",
                      "--batch_size", "8", "--accumulation_steps", "1", "--max_seq_len", str(a.seq_len),
                      "--learning_rate", str(a.pretrain_lr), "--warmup_iters", "10", "--max_steps", str(a.moe_steps))
            model = self.native("pretrain_short", **size)
            held = heldout_loss(model, self.tokenizer, os.path.join(self.world, "pretrain_heldout.jsonl"),
                                max_seq_len=a.seq_len)
            res[name] = {"heldout_loss": held["loss"], "params": count_params(model),
                         "active_params": count_params(model, active_only=True)}
            if name == "moe":
                res[name]["expert_load"] = expert_load(model, self.tokenizer,
                                                       os.path.join(self.world, "pretrain_heldout.jsonl"))
        return res

    def rl(self, script, stage, data, start, max_gen_len, rewards, weights, lr, steps, *extra) -> dict:
        """One RL run (train_grpo.py / train_ppo.py) from the `start` weights on `data`, and its training curve."""
        a = self.args
        self.sh(script, *self.common, "--data_path", os.path.join(self.world, data), "--from_weight", start,
                "--save_weight", stage, "--batch_size", str(a.rl_prompts), "--num_generations", str(a.rl_generations),
                "--max_gen_len", str(max_gen_len), "--max_seq_len", "160", "--learning_rate", str(lr),
                "--warmup_iters", "5", "--max_steps", str(steps), "--reward_funcs", rewards, "--reward_weights",
                weights, "--log_interval", "5", *extra)
        return self.curve(stage)

    def curve(self, stage) -> dict:
        """An RL run's logged reward and KL: first and last fifth of the logged steps, and the largest KL."""
        log = os.path.join(self.out, "logs", f"{stage}_{self.config.hidden_size}.jsonl")
        curve = read_jsonl(log)
        window = max(1, len(curve) // 5)
        mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
        return {"reward_first": mean(curve[:window], "reward"), "reward_last": mean(curve[-window:], "reward"),
                "kl_last": mean(curve[-window:], "kl"), "kl_max": max(r["kl"] for r in curve), "metrics": log}

    def grpo(self):
        """Arithmetic: from the trace-trained reasoning model on rlaif.jsonl (train number combinations), judged on
        reason_heldout.jsonl (held-out combinations) against the model it started from."""
        a = self.args
        out = self.rl("train_grpo.py", "grpo", "rlaif.jsonl", "reason_trace", 96, "answer,steps",
                      a.grpo_reward_weights, a.grpo_lr, a.grpo_steps, "--beta", str(a.grpo_beta))
        heldout = read_jsonl(os.path.join(self.world, "reason_heldout.jsonl"))
        start = reasoning_accuracy(self.native("reason_trace"), self.tokenizer, heldout)
        res = reasoning_accuracy(self.native("grpo"), self.tokenizer, heldout)
        return {**out, "acc": res["acc"], "acc_start": start["acc"], "well_formed": res["well_formed"],
                "examples": res["examples"]}

    def facts_rl(self, script, stage, lr, steps):
        """Fact questions about train-half people (echo and paraphrase wording) from the SFT model, judged on the
        held-out people's questions (qa_heldout.jsonl) against the SFT model: paraphrased questions are the ones
        SFT never taught, so that is where an effect can show."""
        out = self.rl(script, stage, "rlaif_facts.jsonl", "full_sft", 32, "fact", "1", lr, steps)
        by_kind = exact_match(*self.qa(self.native(stage)), check_fact_answer)
        return {**out, "qa": by_kind, "qa_start": self.sft_by_kind}

    def grpo_facts(self):
        return self.facts_rl("train_grpo.py", "grpo_facts", self.args.facts_lr, self.args.facts_steps)

    def ppo_facts(self):
        return self.facts_rl("train_ppo.py", "ppo_facts", self.args.facts_lr, self.args.facts_steps)

    def tool_eval(self, stage, kinds=None):
        items = [it for it in load_items(self.world) if kinds is None or it["kind"] in kinds]
        return evaluate_tool_use(self.native(stage), self.tokenizer, items, read_world_people(self.world))

    def tools(self):
        """Tool-use SFT from the SFT model on tool_sft.jsonl, judged on held-out questions with and without tools."""
        a = self.args
        self.sh("train_full_sft.py", *self.common, "--data_path", os.path.join(self.world, "tool_sft.jsonl"),
                "--from_weight", "full_sft", "--save_weight", "tool_sft", "--batch_size", "16", "--max_seq_len", "320",
                "--learning_rate", str(a.tool_lr), "--warmup_iters", "10", "--max_steps", str(a.tool_steps))
        # the tool model as a Hugging Face folder, for the API server and an OpenAI-SDK tool loop
        self.sh("export_model.py", "--weight", weight_path(self.out, "tool_sft", self.config.hidden_size, False),
                "--save_dir", os.path.join(self.out, "hf_tools"), "--tokenizer_dir", os.path.join(self.out, "tokenizer"),
                "--preset", self.args.preset)
        return self.tool_eval("tool_sft")

    def agent(self):
        """Agentic RL (train_agent.py) from the tool-SFT model on agent_rl.jsonl (directory people no tool-SFT row names),
        judged on the held-out people's two-step tasks against the model it starts from."""
        a = self.args
        self.sh("train_agent.py", *self.common, "--data_path", os.path.join(self.world, "agent_rl.jsonl"),
                "--world_dir", self.world, "--from_weight", "tool_sft", "--save_weight", "agent",
                "--batch_size", str(a.rl_prompts), "--num_generations", str(a.rl_generations), "--max_gen_len", "64",
                "--max_seq_len", "400", "--learning_rate", str(a.agent_lr), "--warmup_iters", "5",
                "--max_steps", str(a.agent_steps), "--log_interval", "5")
        res = self.tool_eval("agent", kinds=("chain", "none"))
        return {"chain": res["chain"], "none": res["none"], "samples": res["samples"], **self.curve("agent")}

    def run_all(self) -> tuple[dict, dict]:
        """(results by stage, {stage: {"wall_time_s": …}})."""
        results, wall_times = {}, {}
        for name in ("lora", "dpo", "distill", "reason", "moe", "grpo", "grpo_facts", "ppo_facts", "tools", "agent"):
            t = time.time()
            res = getattr(self, name)()
            wall_times["moe_vs_dense" if name == "moe" else name] = {"wall_time_s": time.time() - t}
            results.update(res if name == "moe" else {name: res})  # moe() returns {"dense": …, "moe": …}
            print(f"[{name}] {json.dumps(numbers(res))}", flush=True)
        return results, wall_times


def numbers(res: dict) -> dict:
    """The scalar results of a stage, one level of nesting flattened, for the console."""
    out = {}
    for k, v in res.items():
        for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)]):
            if isinstance(vv, (int, float)):
                out[k if kk is None else f"{k}.{kk}"] = round(vv, 4)
    return out
