"""Rewards for RL: plain functions of (prompt, completion, reference) plus what the sampler knows (finished, length).

    answer      1 if the <answer> block equals the reference exactly (arithmetic; as the reasoning evaluation)
    fact        1 if the reply's first sentence holds the reference (as the SFT fact-QA evaluation)
    choice      1 if the chosen letter (the <answer> block, else the reply's first character) is the reference
    format      1 for a well-formed <think>…</think><answer>…</answer> reply, 0.5 for <answer> alone, else 0
    steps       share of the equations "a op b = c" in the reply that are arithmetically right (partial credit
                for correct steps; 0 when there is none)
    trace       share of the reference reply's equations the reply also writes (right numbers copied AND right
                results: partial credit against a worked solution; needs rows with a reference reply)
    length      −1 when the reply ran out of tokens before its EOS, else 0
    repetition  −(share of repeated 4-character windows): 0 for a reply that never repeats itself
A recipe picks them by name with weights (--reward_funcs answer,format --reward_weights 1,0.1); the weighted sum
is the reward, and each part is logged. A Hugging Face sequence-classification folder (--reward_model_path) adds
its score (logit 0 of prompt + reply) as one more part.
"""
import math
import re
from fractions import Fraction

from evals.answers import check_fact_answer, check_reasoning_answer, extract_choice, split_reasoning


def answer_reward(prompt, completion, reference, **_):
    return float(check_reasoning_answer(completion, reference))


def fact_reward(prompt, completion, reference, **_):
    return float(check_fact_answer(completion, reference))


def choice_reward(prompt, completion, reference, **_):
    picked = extract_choice(completion)
    return float(picked is not None and picked == reference.strip().upper())


def format_reward(prompt, completion, reference, **_):
    think, answer = split_reasoning(completion)
    if answer is None or not re.fullmatch(r"(?:<think>\n.*?\n</think>\n)?<answer>\n.*?\n</answer>",
                                          completion.strip(), re.S):
        return 0.0
    return 1.0 if think is not None else 0.5


_EQUATION = re.compile(r"(\d+)\s*([+\-×*x÷/])\s*(\d+)\s*=\s*(\d+)")


def steps_reward(prompt, completion, reference, **_):
    equations = _EQUATION.findall(completion)
    if not equations:
        return 0.0
    right = 0
    for a, op, b, c in equations:
        a, b, c = int(a), int(b), int(c)
        value = {"+": a + b, "-": a - b, "×": a * b, "*": a * b, "x": a * b,
                 "÷": Fraction(a, b) if b else None, "/": Fraction(a, b) if b else None}[op]
        right += value == c
    return right / len(equations)


def _equations(text):
    return [(a, "×" if op in "*x" else op, b, c) for a, op, b, c in _EQUATION.findall(text)]


def trace_reward(prompt, completion, reference, reference_reply="", **_):
    wanted = _equations(reference_reply)
    if not wanted:
        return 0.0
    got = set(_equations(completion))
    return sum(eq in got for eq in wanted) / len(wanted)


def length_reward(prompt, completion, reference, finished=True, **_):
    return 0.0 if finished else -1.0


def repetition_reward(prompt, completion, reference, n=4, **_):
    text = "".join(completion.split())
    windows = [text[i:i + n] for i in range(len(text) - n + 1)]
    return -(1 - len(set(windows)) / len(windows)) if windows else 0.0


REWARDS = {"answer": answer_reward, "fact": fact_reward, "choice": choice_reward, "format": format_reward,
           "steps": steps_reward, "trace": trace_reward, "length": length_reward, "repetition": repetition_reward}


def parse_reward_flags(funcs: str, weights: str | None) -> list[tuple[str, float]]:
    """'answer,format' and '1,0.1' → [("answer", 1.0), ("format", 0.1)]; weights default to 1 each."""
    names = [n.strip() for n in funcs.split(",") if n.strip()]
    if not names:
        raise ValueError("--reward_funcs names no reward")
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"--reward_funcs: unknown reward {', '.join(map(repr, unknown))} "
                         f"(choose from {', '.join(REWARDS)})")
    if weights is None:
        values = [1.0] * len(names)
    else:
        try:
            values = [float(w) for w in weights.split(",")]
        except ValueError:
            raise ValueError(f"--reward_weights {weights!r}: expected comma-separated numbers") from None
        if len(values) != len(names):
            raise ValueError(f"--reward_weights has {len(values)} values for {len(names)} --reward_funcs")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"--reward_weights {weights!r}: weights must be finite")
    return list(zip(names, values))


class RewardModel:
    """Scores from a local Hugging Face sequence-classification folder (no download, no remote code)."""

    def __init__(self, path, tokenizer, device="cpu", trust_remote_code=False):
        from transformers import AutoModelForSequenceClassification
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, local_files_only=True, trust_remote_code=trust_remote_code).to(device).eval()
        except (OSError, ValueError) as e:
            raise ValueError(f"--reward_model_path {path}: not a loadable sequence-classification folder ({e})") \
                from None
        self.tokenizer, self.device = tokenizer, device

    def __call__(self, prompts, completions):
        import torch
        from evals.batching import right_pad
        texts = [p + c for p, c in zip(prompts, completions)]
        seqs = [self.tokenizer.encode(t, add_special_tokens=False) or [0] for t in texts]
        lengths = torch.tensor([len(s) for s in seqs])
        ids = right_pad(seqs, 0).to(self.device)
        mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long().to(self.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
        return logits[:, 0].tolist()


class RewardSet:
    """The weighted sum of named rewards (and a reward model's score): called on a batch of rollouts."""

    def __init__(self, named_weights: list[tuple[str, float]], reward_model=None, reward_model_weight: float = 1.0):
        self.named_weights, self.reward_model, self.rm_weight = named_weights, reward_model, reward_model_weight

    def __call__(self, prompts, completions, references, finished=None, lengths=None, reference_replies=None):
        n = len(completions)
        finished = finished if finished is not None else [True] * n
        lengths = lengths if lengths is not None else [0] * n
        replies = reference_replies if reference_replies is not None else [""] * n
        parts = {name: [REWARDS[name](p, c, r, finished=f, length=ln, reference_reply=rr)
                        for p, c, r, f, ln, rr in zip(prompts, completions, references, finished, lengths, replies)]
                 for name, _w in self.named_weights}
        totals = [sum(w * parts[name][i] for name, w in self.named_weights) for i in range(n)]
        if self.reward_model is not None:
            parts["reward_model"] = self.reward_model(prompts, completions)
            totals = [t + self.rm_weight * s for t, s in zip(totals, parts["reward_model"])]
        return totals, parts


def rewards_from_args(args, tokenizer, device="cpu") -> RewardSet:
    """The RL recipes' --reward_funcs / --reward_weights / --reward_model_path, or SystemExit naming the flag."""
    try:
        model = RewardModel(args.reward_model_path, tokenizer, device, args.trust_remote_code) \
            if args.reward_model_path else None
        return RewardSet(parse_reward_flags(args.reward_funcs, args.reward_weights), model, args.reward_model_weight)
    except ValueError as e:
        raise SystemExit(str(e))
