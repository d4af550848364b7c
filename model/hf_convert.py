"""Native MiniMind ⇄ Hugging Face folder.

Each model leaves as the stock transformers architecture it is numerically, so transformers, vLLM and lm-eval load
it without trust_remote_code:
    MiniMind2 dense            → LlamaForCausalLM   (same blocks, same names)
    minimind-3 dense (qk_norm) → Qwen3ForCausalLM
    minimind-3 MoE             → Qwen3MoeForCausalLM (softmax top-k router, no shared expert)
A MiniMind2 MoE (shared experts) has no stock architecture, so it ships our modeling files beside the weights
(auto_map: transformers needs trust_remote_code=True; import_hf reads it with our own code instead).
"""
import json
import os
import shutil

import torch

from .model_minimind import MiniMindConfig, MiniMindForCausalLM
from .tokenizer import DEFAULT_TOKENIZER_DIR
from .weights import atomic_save, load_into

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _shared_fields(c: MiniMindConfig) -> dict:
    rope = {"rope_type": "default", "rope_theta": c.rope_theta}
    if c.inference_rope_scaling:
        rope = {"rope_type": "yarn", "rope_theta": c.rope_theta, **c.yarn}
    return dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                num_key_value_heads=c.num_key_value_heads, max_position_embeddings=c.max_position_embeddings,
                rms_norm_eps=c.rms_norm_eps, rope_parameters=rope, hidden_act=c.hidden_act,
                tie_word_embeddings=c.tie_word_embeddings, bos_token_id=c.bos_token_id,
                eos_token_id=c.eos_token_id, pad_token_id=c.pad_token_id)


def llama_config(c: MiniMindConfig):
    from transformers import LlamaConfig
    return LlamaConfig(**_shared_fields(c), head_dim=c.head_dim)


def qwen3_config(c: MiniMindConfig):
    from transformers import Qwen3Config
    return Qwen3Config(**_shared_fields(c), head_dim=c.head_dim, attention_bias=False, use_sliding_window=False)


def qwen3_moe_config(c: MiniMindConfig):
    from transformers import Qwen3MoeConfig
    return Qwen3MoeConfig(**_shared_fields(c), head_dim=c.head_dim, attention_bias=False, use_sliding_window=False,
                          moe_intermediate_size=c.intermediate_size, num_experts=c.n_routed_experts,
                          num_experts_per_tok=c.num_experts_per_tok, norm_topk_prob=c.norm_topk_prob,
                          router_aux_loss_coef=c.aux_loss_alpha, decoder_sparse_step=1, mlp_only_layers=[])


def hf_architecture(c: MiniMindConfig) -> str:
    """The transformers class a model exports as (see the module docstring)."""
    if not c.use_moe:
        return "Qwen3ForCausalLM" if c.qk_norm else "LlamaForCausalLM"
    if c.qk_norm and c.n_shared_experts == 0:
        return "Qwen3MoeForCausalLM"
    return "MiniMindForCausalLM"


def export_hf(model: MiniMindForCausalLM, save_dir: str, tokenizer_dir: str | None = None, dtype=None) -> str:
    """Write config.json, model.safetensors, generation_config.json and the tokenizer files into save_dir."""
    from transformers import GenerationConfig, LlamaForCausalLM
    c = model.config
    dtype = dtype or next(model.parameters()).dtype
    generation = GenerationConfig(bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
                                  pad_token_id=c.pad_token_id, do_sample=True, temperature=0.85, top_p=0.85,
                                  max_new_tokens=512)
    os.makedirs(save_dir, exist_ok=True)
    arch = hf_architecture(c)
    if arch == "Qwen3MoeForCausalLM":
        # transformers 5 fuses the experts into one tensor in memory but reads and writes checkpoints with one
        # tensor per expert, under exactly our names: the state dict is written as it is, no model built.
        from safetensors.torch import save_file
        state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()
                 if not (c.tie_word_embeddings and k == "lm_head.weight")}
        config = qwen3_moe_config(c)
        config.architectures = [arch]
        config.dtype = dtype
        config.save_pretrained(save_dir)
        generation.save_pretrained(save_dir)
        save_file(state, os.path.join(save_dir, "model.safetensors"), metadata={"format": "pt"})
    else:
        if arch == "MiniMindForCausalLM":
            # register_for_auto_class makes save_pretrained write auto_map and copy model_minimind_hf.py next to
            # the weights, with model_minimind.py, which it imports relatively
            from .model_minimind_hf import MiniMindForCausalLMHF, to_hf
            MiniMindConfig.register_for_auto_class()
            MiniMindForCausalLMHF.register_for_auto_class("AutoModelForCausalLM")
            out = to_hf(model)
        else:
            from transformers import Qwen3ForCausalLM
            cls, config = ((Qwen3ForCausalLM, qwen3_config(c)) if arch == "Qwen3ForCausalLM"
                           else (LlamaForCausalLM, llama_config(c)))
            out = cls(config)
            out.load_state_dict(model.state_dict(), strict=True)
        out = out.to(dtype)
        out.generation_config = generation
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
    """An exported folder (Llama, Qwen3, Qwen3-MoE or our MoE) back into a native MiniMindForCausalLM. Our own code
    reads all of them, so no code from the folder runs (an MoE folder's modeling files are ignored)."""
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
    elif hc["model_type"] in ("qwen3", "qwen3_moe"):
        config = _config_from_qwen3(hc, hf_dir)
        state = read_safetensors(hf_dir)
    else:
        raise ValueError(f"{hf_dir}: model_type {hc['model_type']!r} is not one of 'llama', 'qwen3', 'qwen3_moe', "
                         f"'minimind'")
    model = MiniMindForCausalLM(config)
    load_into(model, {k: v.float() for k, v in state.items()}, source=hf_dir)
    return model


def _config_from_qwen3(hc: dict, hf_dir: str) -> MiniMindConfig:
    """Our config for a Qwen3 / Qwen3-MoE config.json, refusing what our network does not compute."""
    def need(key, kind=(int, float)):
        value = hc.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{hf_dir}/config.json: {key} is missing or not a number")
        return value
    if hc.get("attention_bias") or hc.get("use_sliding_window"):
        raise ValueError(f"{hf_dir}/config.json: attention_bias / use_sliding_window are not supported")
    rope = hc.get("rope_parameters") or {"rope_type": "default", "rope_theta": hc.get("rope_theta", 1e6)}
    yarn = rope.get("rope_type") == "yarn"
    fields = dict(hidden_size=need("hidden_size"), num_hidden_layers=need("num_hidden_layers"),
                  num_attention_heads=need("num_attention_heads"), num_key_value_heads=need("num_key_value_heads"),
                  head_dim=need("head_dim"), vocab_size=need("vocab_size"),
                  max_position_embeddings=need("max_position_embeddings"), rms_norm_eps=need("rms_norm_eps"),
                  rope_theta=rope.get("rope_theta", 1e6), tie_word_embeddings=bool(hc.get("tie_word_embeddings")),
                  qk_norm=True, inference_rope_scaling=yarn,
                  yarn={k: v for k, v in rope.items() if k not in ("rope_type", "rope_theta")} if yarn else None)
    if hc["model_type"] == "qwen3":
        return MiniMindConfig(**fields, intermediate_size=need("intermediate_size"))
    if hc.get("mlp_only_layers") or hc.get("decoder_sparse_step", 1) != 1:
        raise ValueError(f"{hf_dir}/config.json: dense layers inside a Qwen3-MoE (mlp_only_layers, "
                         f"decoder_sparse_step) are not supported")
    experts = hc.get("num_experts", hc.get("num_local_experts"))
    if not isinstance(experts, int):
        raise ValueError(f"{hf_dir}/config.json: num_experts is missing")
    return MiniMindConfig(**fields, intermediate_size=need("moe_intermediate_size"), use_moe=True,
                          n_routed_experts=experts, num_experts_per_tok=need("num_experts_per_tok"),
                          n_shared_experts=0, norm_topk_prob=bool(hc.get("norm_topk_prob")),
                          aux_loss_alpha=hc.get("router_aux_loss_coef", 5e-4), seq_aux=False)


def save_native(model: MiniMindForCausalLM, path: str, dtype=torch.float16):
    """Half-precision inference weights, as upstream ships them; written atomically."""
    atomic_save({k: v.to(dtype) for k, v in model.state_dict().items()}, path)
