"""Free-form QA: greedy answers to held-out questions, scored by whether the expected value appears."""
import torch

from dataset.tool_messages import template_arguments
from evals.answers import SENTENCE_END
from evals.batching import left_pad
from model.generate import generate


@torch.inference_mode()
def chat_replies(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 64, batch_size: int = 32,
                 device="cpu") -> list[str]:
    """Greedy reply to each conversation (its final assistant turn, if any, is dropped: that is the reference)."""
    prompts = []
    for conv in conversations:
        if conv and conv[-1]["role"] == "assistant":
            conv = conv[:-1]
        conv, extra = template_arguments(conv)  # tools on the system message → tools=
        prompts.append(tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True, **extra))
    pad, eos = tokenizer.pad_token_id or 0, tokenizer.eos_token_id
    replies = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_pad(tokenizer, prompts[start:start + batch_size])
        width = ids.shape[1]
        out = generate(model, ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                       temperature=0, eos_token_id=eos, pad_token_id=pad)[:, width:]
        for row in out.tolist():
            if eos in row:
                row = row[:row.index(eos)]
            replies.append(tokenizer.decode(row, skip_special_tokens=True))
    return replies


def exact_match(records: list[dict], replies: list[str], check) -> dict:
    """Accuracy overall and per (lang, kind) group; `check(reply, answer) -> bool`."""
    groups: dict[str, list[bool]] = {}
    for rec, reply in zip(records, replies):
        ok = check(reply, rec["answer"])
        groups.setdefault("all", []).append(ok)
        key = "/".join(str(rec[k]) for k in ("lang", "kind") if k in rec)
        if key:
            groups.setdefault(key, []).append(ok)
    return {k: sum(v) / len(v) for k, v in sorted(groups.items())}


def answer_quality(records: list[dict], replies: list[str], check) -> dict:
    """Shares of replies that are wrong (the expected value is missing) and that ramble (more than the one sentence
    a fact question needs), and of replies that are either — what DPO on correct-vs-wrong/rambling pairs should cut."""
    wrong = [not check(y, r["answer"]) for r, y in zip(records, replies)]
    rambling = [len(SENTENCE_END.findall(y.strip())) > 1 for y in replies]
    n = max(len(replies), 1)
    return {"wrong": sum(wrong) / n, "rambling": sum(rambling) / n,
            "wrong_or_rambling": sum(w or r for w, r in zip(wrong, rambling)) / n}
