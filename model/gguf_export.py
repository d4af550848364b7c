"""Native MiniMind → one GGUF file that llama.cpp (and Ollama, LM Studio, llama-cpp-python…) runs.

Written with `gguf`, llama.cpp's own Python writer, straight from our weights and tokenizer.json: llama.cpp's
converter identifies a tokenizer by hashing how it tokenizes a probe text and stops on any it has not seen (every
MiniMind tokenizer), while what llama.cpp needs is only *which* of its pre-tokenizers to run. We read that off the
tokenizer's own pre-tokenizer, and refuse one llama.cpp does not implement.

    MiniMind2 dense    → arch "llama"    (q/k rows permuted: llama.cpp rotates adjacent pairs, we rotate halves)
    minimind-3 dense   → arch "qwen3"    (q_norm/k_norm; llama.cpp rotates halves, like us)
    minimind-3 MoE     → arch "qwen3moe" (experts stacked into one tensor per projection)
A MiniMind2 MoE has no llama.cpp architecture that computes it (shared experts with top-2 normalised weights).
"""
import json
import os

import torch

from .hf_convert import hf_architecture
from .model_minimind import MiniMindForCausalLM
from .weights import nonfinite_tensors

GGUF_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def _byte_level(step: dict) -> bool:
    return step.get("type") == "ByteLevel" and step.get("use_regex", True) and not step.get("add_prefix_space")


def llama_cpp_pre_tokenizer(tokenizer_json: dict, source: str = "tokenizer.json") -> str:
    """The name of the llama.cpp pre-tokenizer that cuts text exactly as this tokenizer.json does.

    GPT-2's regex alone is llama.cpp's "gpt-2" (upstream MiniMind's tokenizers); one pre-token per digit and then
    GPT-2's regex is its "refact" (ours, model/tokenizer_train.py)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or tokenizer_json.get("normalizer") is not None or model.get("byte_fallback"):
        raise ValueError(f"{source}: only byte-level BPE without a normalizer exports to GGUF here")
    if len(steps) == 1 and _byte_level(steps[0]):
        return "gpt-2"
    if (len(steps) == 2 and steps[0].get("type") == "Digits" and steps[0].get("individual_digits")
            and _byte_level(steps[1])):
        return "refact"
    raise ValueError(f"{source}: llama.cpp implements no pre-tokenizer equal to {json.dumps(pre)[:300]} "
                     f"(GGUF export supports GPT-2's byte-level regex, optionally after individual digits: "
                     f"what train_tokenizer.py writes)")


def _tokenizer_fields(tokenizer_dir: str, vocab_size: int) -> dict:
    path = os.path.join(tokenizer_dir, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no tokenizer.json in {tokenizer_dir}")
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    pre = llama_cpp_pre_tokenizer(tj, path)
    tokens = {i: t for t, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    tokens.update({i: a["content"] for i, a in added.items()})
    if max(tokens) >= vocab_size:
        raise ValueError(f"{path}: token id {max(tokens)} does not fit the model's vocab_size {vocab_size}")
    import gguf
    names, types = [], []
    for i in range(vocab_size):  # ids the tokenizer leaves unused (a model rounded up) get placeholders
        if i not in tokens:
            names.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            names.append(tokens[i])
            # special tokens only when parse_special is on (as transformers' special tokens); added ones always,
            # as transformers splits out its added non-special tokens (<think>, <tool_call>…)
            types.append(gguf.TokenType.CONTROL if added.get(i, {}).get("special") else
                         gguf.TokenType.USER_DEFINED if i in added else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"].get("merges", [])]
    config_path = os.path.join(tokenizer_dir, "tokenizer_config.json")
    template = None
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            template = json.load(f).get("chat_template")
    return dict(pre=pre, tokens=names, types=types, merges=merges, chat_template=template)


def _permute_for_llama(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    # Each head's rows hold [first halves of the rotated pairs | second halves]; llama.cpp's "llama" arch rotates
    # adjacent rows (0,1), (2,3)…, so interleave the halves.
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# llama.cpp's name for each transformers architecture we export as (model/hf_convert.py decides which).
LLAMA_CPP_ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen3ForCausalLM": "qwen3",
                           "Qwen3MoeForCausalLM": "qwen3moe"}


def gguf_architecture(config) -> str:
    arch = LLAMA_CPP_ARCHITECTURES.get(hf_architecture(config))
    # llama.cpp's qwen3moe always rescales the chosen experts' weights to sum to 1
    if arch is None or (config.use_moe and not config.norm_topk_prob):
        raise ValueError("a MiniMind2 MoE (shared experts, top-k weights normalised only for k > 1) has no llama.cpp "
                         "architecture that computes it; export it with --save_dir instead")
    return arch


def export_gguf(model: MiniMindForCausalLM, path: str, tokenizer_dir: str, dtype=torch.float32) -> str:
    """Write `path` (GGUF, weights in `dtype`; norms stay F32 as llama.cpp requires; its folder made if missing) and an
    Ollama Modelfile beside it. Returns the architecture name."""
    import gguf
    c = model.config
    arch = gguf_architecture(c)
    if c.inference_rope_scaling:
        raise ValueError("GGUF export writes the model at its trained context; leave --inference_rope_scaling off "
                         "and give llama.cpp its own --rope-scaling yarn flags")
    if dtype not in GGUF_DTYPES:
        raise ValueError(f"GGUF weights are float32, float16 or bfloat16, not {dtype}")
    tok = _tokenizer_fields(tokenizer_dir, c.vocab_size)
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    bad = nonfinite_tensors(sd)
    if bad:
        raise ValueError(f"non-finite values in {', '.join(bad[:5])}: nothing written")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    try:
        _write(gguf, tmp, arch, c, tok, sd, dtype)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written model under the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    write_modelfile(path)
    return arch


def _write(gguf, tmp, arch, c, tok, sd, dtype):
    w = gguf.GGUFWriter(tmp, arch)
    w.add_name("MiniMind")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_rope_dimension_count(c.head_dim)
    w.add_rope_freq_base(c.rope_theta)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    w.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                     "BF16": gguf.LlamaFileType.MOSTLY_BF16}[GGUF_DTYPES[dtype]])
    if c.use_moe:
        w.add_expert_count(c.n_routed_experts)
        w.add_expert_used_count(c.num_experts_per_tok)
        w.add_expert_feed_forward_length(c.intermediate_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(tok["pre"])
    w.add_token_list(tok["tokens"])
    w.add_token_types(tok["types"])
    w.add_token_merges(tok["merges"])
    w.add_bos_token_id(c.bos_token_id)
    w.add_eos_token_id(c.eos_token_id)
    w.add_pad_token_id(c.pad_token_id)
    w.add_add_bos_token(False)  # our tokenizer adds nothing; the chat template writes <|im_start|> itself
    w.add_add_eos_token(False)
    if tok["chat_template"]:
        w.add_chat_template(tok["chat_template"])

    T, N = gguf.MODEL_TENSOR, gguf.TENSOR_NAMES

    def put(kind, tensor, bid=None):
        name = N[kind].format(bid=bid) + ".weight"
        if tensor.dim() == 1 or kind == T.FFN_GATE_INP:  # norms and the router stay F32, as llama.cpp's converter
            w.add_tensor(name, tensor.numpy())
        elif dtype == torch.bfloat16:  # numpy has no bfloat16: gguf packs it
            bf16 = gguf.GGMLQuantizationType.BF16
            w.add_tensor(name, gguf.quants.quantize(tensor.numpy(), bf16), raw_dtype=bf16)
        else:
            w.add_tensor(name, tensor.to(dtype).numpy())

    put(T.TOKEN_EMBD, sd["model.embed_tokens.weight"])
    put(T.OUTPUT_NORM, sd["model.norm.weight"])
    if not c.tie_word_embeddings:
        put(T.OUTPUT, sd["lm_head.weight"])  # tied: llama.cpp reads the embedding as the output head
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = _permute_for_llama(q, c.num_attention_heads), _permute_for_llama(k, c.num_key_value_heads)
        put(T.ATTN_NORM, sd[p + "input_layernorm.weight"], i)
        put(T.ATTN_Q, q, i)
        put(T.ATTN_K, k, i)
        put(T.ATTN_V, sd[p + "self_attn.v_proj.weight"], i)
        put(T.ATTN_OUT, sd[p + "self_attn.o_proj.weight"], i)
        if c.qk_norm:
            put(T.ATTN_Q_NORM, sd[p + "self_attn.q_norm.weight"], i)
            put(T.ATTN_K_NORM, sd[p + "self_attn.k_norm.weight"], i)
        put(T.FFN_NORM, sd[p + "post_attention_layernorm.weight"], i)
        if c.use_moe:
            put(T.FFN_GATE_INP, sd[p + "mlp.gate.weight"], i)
            for kind, proj in ((T.FFN_GATE_EXP, "gate"), (T.FFN_UP_EXP, "up"), (T.FFN_DOWN_EXP, "down")):
                put(kind, torch.stack([sd[f"{p}mlp.experts.{e}.{proj}_proj.weight"]
                                       for e in range(c.n_routed_experts)]), i)
        else:
            put(T.FFN_GATE, sd[p + "mlp.gate_proj.weight"], i)
            put(T.FFN_UP, sd[p + "mlp.up_proj.weight"], i)
            put(T.FFN_DOWN, sd[p + "mlp.down_proj.weight"], i)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# Ollama's Go template for our ChatML (model/tokenizer_train.py's CHAT_TEMPLATE without tools).
OLLAMA_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def write_modelfile(gguf_path: str) -> str:
    """An Ollama Modelfile beside the GGUF: `ollama create minimind -f Modelfile` then `ollama run minimind`."""
    path = os.path.join(os.path.dirname(os.path.abspath(gguf_path)), "Modelfile")
    text = (f"FROM ./{os.path.basename(gguf_path)}\n"
            f'TEMPLATE """{OLLAMA_TEMPLATE}"""\n'
            'PARAMETER stop "<|im_end|>"\n'
            'PARAMETER stop "<|im_start|>"\n'
            "PARAMETER temperature 0.85\n"
            "PARAMETER top_p 0.85\n")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return path
