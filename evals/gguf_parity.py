"""Does llama.cpp run our GGUF export as we run the model? Tokenization of a mixed text and greedy tokens on chat
prompts, compared id for id (llama.cpp through `llama-cpp-python`, which builds it from source).

Used by scripts/check_gguf.py, scripts/check_vllm.py and the llama.cpp test (scripts/test.sh --llama-cpp).
"""
import torch

from model.generate import generate
from model.model_minimind import MiniMindForCausalLM, config_from_preset

# Chinese, English, digits, emoji, accents, typographic quotes, double spaces, blank lines and tabs.
MIXED_TEXT = ("MiniMind 是一个从零训练的小模型，生于2024年3月5日。Hello, world! 1234567890 + 3.14 = ? "
              "😀🎉👍 naïve café — “引号”「括号」。\n\n  两个空格\t制表符\nend  ")
PROMPTS = ["张伟的生日是哪天？", "What is 3+5?", "你好，请介绍一下你自己。", "Who is Li Na?",
           "计算 12×7 等于多少？"]


def decisive_model(preset: str, vocab: int, **size) -> MiniMindForCausalLM:
    """Random weights five times the usual scale (std 0.1 for every matrix): varied greedy continuations with clear
    winners, not the near-ties of a fresh model that float rounding could flip — for checking another runtime's
    greedy tokens against ours without training a model first."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(config_from_preset(preset, vocab_size=vocab, **size)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.1)
    return model


def compare_with_llama_cpp(model, tokenizer, gguf_path: str, prompts=PROMPTS, max_new_tokens: int = 16,
                           threads: int = 2) -> dict:
    """{"mixed_text": {...}, "prompts": [...], "all_equal": bool}: our tokenizer and generator against llama.cpp
    loading gguf_path. Greedy continuations are compared up to and including the first end-of-turn token."""
    from llama_cpp import Llama
    llm = Llama(model_path=gguf_path, n_ctx=512, n_threads=threads, verbose=False)
    try:
        def llama_ids(text):
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

        ours = tokenizer.encode(MIXED_TEXT, add_special_tokens=False)
        report = {"mixed_text": {"tokens": len(ours), "equal": ours == llama_ids(MIXED_TEXT)}, "prompts": []}
        eos = tokenizer.eos_token_id
        for prompt in prompts:
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
            ids = tokenizer.encode(text, add_special_tokens=False)
            with torch.no_grad():
                mine = generate(model, torch.tensor([ids], device=model.device), max_new_tokens=max_new_tokens,
                                temperature=0, eos_token_id=eos)[0, len(ids):].tolist()
            theirs = []
            for t in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
                theirs.append(int(t))
                if t == eos or len(theirs) == max_new_tokens:
                    break
            mine = mine[:mine.index(eos) + 1] if eos in mine else mine
            report["prompts"].append({"prompt": prompt, "prompt_tokens_equal": ids == llama_ids(text),
                                      "ours": mine, "llama_cpp": theirs, "equal": mine == theirs,
                                      "text": tokenizer.decode(mine)})
    finally:
        llm.close()
    report["all_equal"] = report["mixed_text"]["equal"] and all(
        r["equal"] and r["prompt_tokens_equal"] for r in report["prompts"])
    return report


def format_report(report: dict) -> str:
    lines = [f"mixed text ({report['mixed_text']['tokens']} tokens): "
             f"{'identical ids' if report['mixed_text']['equal'] else 'DIFFERENT ids'}",
             "| prompt | prompt ids | greedy tokens | ours |", "|---|---|---|---|"]
    for r in report["prompts"]:
        lines.append(f"| {r['prompt']} | {'same' if r['prompt_tokens_equal'] else 'DIFFERENT'} | "
                     f"{'same' if r['equal'] else 'DIFFERENT'} ({len(r['ours'])}) | "
                     f"{r['text'][:50].replace(chr(10), ' ')} |")
    return "\n".join(lines)
