"""Accuracy on held-out reasoning questions, and how often the reply has the <think>/<answer> format."""
from evals.answers import check_reasoning_answer, split_reasoning
from evals.qa import chat_replies


def reasoning_accuracy(model, tokenizer, records: list[dict], max_new_tokens: int = 96) -> dict:
    """records: {"conversations", "answer"}; the answer inside <answer>…</answer> must equal it EXACTLY
    (containment would accept "17" for "7")."""
    replies = chat_replies(model, tokenizer, [r["conversations"] for r in records], max_new_tokens=max_new_tokens)
    correct = well_formed = 0
    for rec, reply in zip(records, replies):
        think, answer = split_reasoning(reply)
        correct += check_reasoning_answer(reply, rec["answer"])
        well_formed += think is not None and answer is not None
    n = len(records)
    return {"acc": correct / n, "well_formed": well_formed / n, "n": n,
            "examples": [{"q": r["conversations"][0]["content"], "reply": y} for r, y in list(zip(records, replies))[:3]]}
