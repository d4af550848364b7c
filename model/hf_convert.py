"""Native MiniMind ⇄ Hugging Face folder.

A dense MiniMind *is* a Llama (same blocks, same names), so it is exported as a plain `LlamaForCausalLM` that
transformers, vLLM and lm-eval load without trust_remote_code. An MoE model has no stock architecture in
transformers, so it ships our modeling files beside the weights (auto_map → trust_remote_code=True).
"""
import os
import shutil

import torch

from .model_minimind import MiniMindConfig, MiniMindForCausalLM
from .tokenizer import DEFAULT_TOKENIZER_DIR
from .weights import atomic_save, load_into

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def llama_config(c: MiniMindConfig):
    from transformers import LlamaConfig
    rope = {"rope_type": "default", "rope_theta": c.rope_theta}
    if c.inference_rope_scaling:
        rope = {"rope_type": "yarn", "rope_theta": c.rope_theta, **c.yarn}
    return LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                       num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                       num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                       rms_norm_eps=c.rms_norm_eps, rope_parameters=rope, hidden_act=c.hidden_act,
                       tie_word_embeddings=c.tie_word_embeddings, bos_token_id=c.bos_token_id,
                       eos_token_id=c.eos_token_id, pad_token_id=c.pad_token_id)


def export_hf(model: MiniMindForCausalLM, save_dir: str, tokenizer_dir: str | None = None, dtype=None) -> str:
    """Write config.json, model.safetensors, generation_config.json and the tokenizer files into save_dir."""
    from transformers import GenerationConfig, LlamaForCausalLM
    c = model.config
    dtype = dtype or next(model.parameters()).dtype
    if c.use_moe:
        # register_for_auto_class makes save_pretrained write auto_map and copy model_minimind_hf.py next to the
        # weights, with model_minimind.py, which it imports relatively
        from .model_minimind_hf import MiniMindForCausalLMHF, to_hf
        MiniMindConfig.register_for_auto_class()
        MiniMindForCausalLMHF.register_for_auto_class("AutoModelForCausalLM")
        out = to_hf(model)
    else:
        out = LlamaForCausalLM(llama_config(c))
        out.load_state_dict(model.state_dict(), strict=True)
    out = out.to(dtype)
    out.generation_config = GenerationConfig(bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                                             pad_token_id=c.pad_token_id, do_sample=True, temperature=0.85,
                                             top_p=0.85, max_new_tokens=512)
    os.makedirs(save_dir, exist_ok=True)
    out.save_pretrained(save_dir)
    copy_tokenizer(tokenizer_dir or DEFAULT_TOKENIZER_DIR, save_dir)
    return save_dir


def copy_tokenizer(src: str, dst: str):
    if not os.path.isfile(os.path.join(src, "tokenizer.json")):
        raise FileNotFoundError(f"no tokenizer.json in {src}; pass --tokenizer_dir (train one with train_tokenizer.py)")
    for name in TOKENIZER_FILES:
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))


def import_hf(hf_dir: str) -> MiniMindForCausalLM:
    """An exported folder (Llama or our MoE) back into a native MiniMindForCausalLM."""
    from transformers import AutoConfig, AutoModelForCausalLM
    hc = AutoConfig.from_pretrained(hf_dir, trust_remote_code=True)
    if hc.model_type == "minimind":
        src = AutoModelForCausalLM.from_pretrained(hf_dir, trust_remote_code=True, dtype=torch.float32)
        config = MiniMindConfig.from_dict({k: v for k, v in src.config.to_dict().items() if k != "auto_map"})
    elif hc.model_type == "llama":
        src = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        rope = hc.rope_parameters or {}
        yarn = rope.get("rope_type") == "yarn"
        config = MiniMindConfig(
            hidden_size=hc.hidden_size, num_hidden_layers=hc.num_hidden_layers,
            num_attention_heads=hc.num_attention_heads, num_key_value_heads=hc.num_key_value_heads,
            intermediate_size=hc.intermediate_size, vocab_size=hc.vocab_size,
            max_position_embeddings=hc.max_position_embeddings, rope_theta=rope.get("rope_theta", 1e6),
            rms_norm_eps=hc.rms_norm_eps, tie_word_embeddings=hc.tie_word_embeddings,
            inference_rope_scaling=yarn, yarn={k: v for k, v in rope.items() if k not in ("rope_type", "rope_theta")}
            if yarn else None)
    else:
        raise ValueError(f"{hf_dir}: model_type {hc.model_type!r} is neither 'llama' nor 'minimind'")
    model = MiniMindForCausalLM(config)
    load_into(model, src.state_dict(), source=hf_dir)
    return model


def save_native(model: MiniMindForCausalLM, path: str, dtype=torch.float16):
    """Half-precision inference weights, as upstream ships them; written atomically."""
    atomic_save({k: v.to(dtype) for k, v in model.state_dict().items()}, path)
