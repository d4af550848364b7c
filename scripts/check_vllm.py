"""GPU only: does vLLM serve our exports as we run them? Exports a dense MiniMind2-shaped model (→ Llama) and a
minimind-3 one (→ Qwen3) with decisive random weights (or --weight: a trained native checkpoint) and compares vLLM's
greedy tokens with our generator's on five chat prompts, from the same prompt ids. Prints one line per model; exit
status 1 on a difference, 0 with a note when vLLM is not installed. Run by scripts/gpu_check.sh.

    python scripts/check_vllm.py
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from evals.gguf_parity import PROMPTS, decisive_model  # noqa: E402
from model.generate import generate  # noqa: E402
from model.hf_convert import export_hf  # noqa: E402
from model.tokenizer import DEFAULT_TOKENIZER_DIR  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max_new_tokens", type=int, default=16)
    args = p.parse_args()
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        print("vllm: not installed, skipped (pip install vllm on a CUDA machine)")
        return
    tok = AutoTokenizer.from_pretrained(DEFAULT_TOKENIZER_DIR)
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True,
                                       return_dict=False) for q in PROMPTS]
    failed = False
    for preset in ("minimind2-small", "minimind-3"):
        model = decisive_model(preset, len(tok), hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2)
        with tempfile.TemporaryDirectory() as d:
            export_hf(model, d, DEFAULT_TOKENIZER_DIR, dtype=torch.float32)
            llm = LLM(model=d, dtype="float32", enforce_eager=True, gpu_memory_utilization=0.3, max_model_len=512)
            outs = llm.generate([{"prompt_token_ids": ids} for ids in prompts],
                                SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens, ignore_eos=True))
            del llm
        same = 0
        for ids, out in zip(prompts, outs):
            with torch.no_grad():
                ours = generate(model, torch.tensor([ids]), max_new_tokens=args.max_new_tokens, temperature=0,
                                eos_token_id=None)[0, len(ids):].tolist()
            same += ours == list(out.outputs[0].token_ids)
        failed |= same != len(prompts)
        print(f"vllm {preset}: identical greedy tokens on {same}/{len(prompts)} prompts")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
