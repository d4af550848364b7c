"""llama.cpp runs our GGUF exports as we run the models: identical ids for a mixed Chinese/English/digits/emoji text
and identical greedy tokens on five chat prompts. Needs llama-cpp-python, which builds llama.cpp from source
(~20 min): `bash scripts/test.sh --llama-cpp` installs it (CI does); elsewhere these tests skip."""
import pytest
import torch
from transformers import AutoTokenizer

from evals.gguf_parity import compare_with_llama_cpp, decisive_model, format_report
from model.gguf_export import export_gguf
from model.tokenizer import DEFAULT_TOKENIZER_DIR

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (bash scripts/test.sh --llama-cpp)")

SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


# the quickstart's shape (tiny), MiniMind2-small's shape, minimind-3's shape (qwen3) and its MoE (qwen3moe)
@pytest.mark.parametrize("preset,size", [("tiny", {}), ("minimind2-small", {}), ("minimind-3", SMALL),
                                         ("minimind-3-moe", SMALL)])
def test_llama_cpp_matches_our_tokenizer_and_greedy_tokens(tmp_path, preset, size):
    tok = AutoTokenizer.from_pretrained(DEFAULT_TOKENIZER_DIR)  # the quickstart's tokenizer
    model = decisive_model(preset, len(tok), **size)  # our top-2 margins are checked below
    path = str(tmp_path / "m.gguf")
    export_gguf(model, path, DEFAULT_TOKENIZER_DIR)
    report = compare_with_llama_cpp(model, tok, path, max_new_tokens=12, threads=1)
    print(format_report(report))
    assert report["mixed_text"]["equal"] and report["mixed_text"]["tokens"] > 80
    compared = 0
    for row in report["prompts"]:
        assert row["prompt_tokens_equal"], row["prompt"]
        # the comparison means something only where our greedy step won by a clear margin: a near-tie of random
        # weights (top two within 1e-3) may go either way under another runtime's float rounding, so tokens are
        # compared up to the first one, and most steps of all prompts must come before it
        ids = tok.apply_chat_template([{"role": "user", "content": row["prompt"]}], add_generation_prompt=True,
                                      tokenize=True, return_dict=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids + row["ours"]])).logits[0, len(ids) - 1:-1]
        top2 = logits.topk(2, dim=-1).values
        decisive = (top2[:, 0] - top2[:, 1] > 1e-3).tolist() + [False]
        n = decisive.index(False)
        assert row["ours"][:n] == row["llama_cpp"][:n], row
        compared += n
    assert compared >= sum(len(row["ours"]) for row in report["prompts"]) // 2
    # varied continuations, not one token repeated everywhere
    assert len({t for row in report["prompts"] for t in row["ours"]}) >= 8
