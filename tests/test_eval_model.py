import os
import subprocess
import sys

import torch

from model.hf_convert import save_native
from model.model_lora import apply_lora, lora_state_dict
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--num_key_value_heads", "2"]


def test_chat_cli_runs_builtin_prompts_with_lora(tmp_path, tiny_tokenizer_dir):
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, vocab_size=600))
    save_native(model, str(tmp_path / "full_sft_32.pth"))
    lora = apply_lora(model, rank=2)
    (tmp_path / "lora").mkdir()
    torch.save(lora_state_dict(lora), tmp_path / "lora" / "lora_identity_32.pth")
    r = subprocess.run([sys.executable, "eval_model.py", "--out_dir", str(tmp_path), "--tokenizer_dir",
                        tiny_tokenizer_dir, *SIZE, "--interactive", "0", "--max_new_tokens", "8", "--show_speed",
                        "1", "--lora_weight", "lora_identity", "--history_cnt", "2"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("👤:") == 5 and r.stdout.count("🤖:") == 5 and "tokens/s]" in r.stdout

    missing = subprocess.run([sys.executable, "eval_model.py", "--out_dir", str(tmp_path / "none"),
                              "--tokenizer_dir", tiny_tokenizer_dir, *SIZE, "--interactive", "0"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "no checkpoint at" in missing.stderr and "Traceback" not in missing.stderr


def test_chat_cli_with_int8_weights(tmp_path, tiny_tokenizer_dir):
    torch.manual_seed(0)
    save_native(MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                   num_key_value_heads=2, vocab_size=600)),
                str(tmp_path / "full_sft_32.pth"))
    r = subprocess.run([sys.executable, "eval_model.py", "--out_dir", str(tmp_path), "--tokenizer_dir",
                        tiny_tokenizer_dir, *SIZE, "--interactive", "0", "--max_new_tokens", "4", "--quantize", "int8"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("🤖:") == 5


def test_chat_path_stays_off_heavy_imports(tmp_path, tiny_tokenizer_dir):
    # transformers.modeling_utils (PreTrainedModel) and transformers.generation cost 130-160 MB of RSS (they pull in
    # torch.distributed.tensor, torch._dynamo, sympy, scipy, accelerate…), and torch._dynamo + sympy alone 73 MB (meta
    # tensors' Python kernels import them): either is more than the headroom between a 26M chat and its 500 MB target
    # . Loading the weights, the chat template, our generator, the server module: none may import them.
    config = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=600)
    save_native(MiniMindForCausalLM(MiniMindConfig(**config)), str(tmp_path / "full_sft_32.pth"))
    code = f"""
import sys
sys.path[:0] = [{REPO!r}, {os.path.join(REPO, "scripts")!r}]
import torch
import eval_model, serve_openai_api
from model.model_minimind import MiniMindConfig
from model.streaming import TextStream
from model.tokenizer import load_tokenizer
from model.weights import load_native
tok = load_tokenizer({tiny_tokenizer_dir!r})
model = load_native({str(tmp_path / "full_sft_32.pth")!r}, MiniMindConfig(**{config!r})).eval()
text = tok.apply_chat_template([{{"role": "user", "content": "你好"}}], tokenize=False, add_generation_prompt=True)
ids = torch.tensor([tok.encode(text, add_special_tokens=False)], device=model.device)
pieces = list(TextStream(model, tok, ids, max_new_tokens=4, temperature=0))
model(ids, use_cache=True)  # transformers' DynamicCache is imported here
heavy = ("transformers.modeling_utils", "transformers.generation.utils", "torch._dynamo", "sympy")
print("heavy:", sorted(m for m in heavy if m in sys.modules))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "heavy: []"
