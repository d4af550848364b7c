"""Native MiniMind ⇄ Hugging Face folder.

A dense MiniMind *is* a Llama (same blocks, same names), so it is exported as a plain `LlamaForCausalLM` that
transformers, vLLM and lm-eval load without trust_remote_code. An MoE model has no stock architecture in
transformers, so it ships our modeling files beside the weights (auto_map: transformers needs trust_remote_code=True;
import_hf reads it with our own code instead).
"""
import json
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


def read_hf_config(hf_dir: str) -> dict:
    path = os.path.join(hf_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{hf_dir}: no config.json (not a Hugging Face model folder)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ValueError(f"{path}: no model_type")
    return config


def read_safetensors(hf_dir: str) -> dict:
    """Every tensor of a folder's *.safetensors files (one file, or shards)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    files = sorted(f for f in os.listdir(hf_dir) if f.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"{hf_dir}: no *.safetensors weights")
    state = {}
    for name in files:
        try:
            state.update(load_file(os.path.join(hf_dir, name)))
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"{os.path.join(hf_dir, name)}: unreadable weights ({e})") from None
    return state


def import_hf(hf_dir: str) -> MiniMindForCausalLM:
    """An exported folder (Llama or our MoE) back into a native MiniMindForCausalLM. Our own code reads both, so
    no code from the folder runs (an MoE folder's modeling files are ignored)."""
    hc = read_hf_config(hf_dir)
    if hc["model_type"] == "minimind":
        config = MiniMindConfig.from_dict({k: v for k, v in hc.items() if k != "auto_map"})
        state = read_safetensors(hf_dir)
    elif hc["model_type"] == "llama":
        from transformers import AutoModelForCausalLM
        src = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, trust_remote_code=False)
        hc = src.config
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
        state = src.state_dict()
    else:
        raise ValueError(f"{hf_dir}: model_type {hc['model_type']!r} is neither 'llama' nor 'minimind'")
    model = MiniMindForCausalLM(config)
    load_into(model, {k: v.float() for k, v in state.items()}, source=hf_dir)
    return model


def save_native(model: MiniMindForCausalLM, path: str, dtype=torch.float16):
    """Half-precision inference weights, as upstream ships them; written atomically."""
    atomic_save({k: v.to(dtype) for k, v in model.state_dict().items()}, path)
