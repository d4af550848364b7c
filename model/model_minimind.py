"""MiniMind: a small Llama-style decoder (dense or Mixture-of-Experts) written to be read.

Shape of the network (per layer):  x + Attn(RMSNorm(x))  then  h + FFN(RMSNorm(h)),
with RoPE positions, grouped-query attention and a SwiGLU feed-forward (or a top-k MoE of SwiGLU experts).

Two generations of upstream MiniMind share this code, told apart by config fields:
  MiniMind2   (presets minimind2*): a Llama; the MoE is DeepSeekMoE-style (routed + shared experts).
  minimind-3  (presets minimind-3*): a Qwen3: RMSNorm on each head's queries and keys (qk_norm), π·d feed-forward,
              and a Qwen3-MoE (softmax router, top-1, no shared expert).
Parameter names are upstream's for both, so their checkpoints load with strict=True; the dense models are
numerically transformers' `LlamaForCausalLM` / `Qwen3ForCausalLM` and the minimind-3 MoE its `Qwen3MoeForCausalLM`
(model/hf_convert.py relies on that).

MiniMindForCausalLM is a plain nn.Module, not a transformers PreTrainedModel: importing `transformers.modeling_utils`
or `transformers.generation` pulls in torch.distributed.tensor, torch._dynamo, sympy, scipy, accelerate… and costs
every chat, server and web-demo process more memory than the 26M model itself (docs/results.md has the figures).
The Hugging Face face of the same network, for transformers' generate() and the MoE export, is model_minimind_hf.py.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig
from transformers.utils import ModelOutput


def _ffn_width(hidden_size: int, multiplier: float) -> int:
    # SwiGLU has 3 matrices instead of 2, so 8/3·d keeps the FFN's parameter count at that of a 4·d MLP
    # (Shazeer 2020; MiniMind2: 512 → 1408); minimind-3 widens it to π·d (768 → 2432). Rounding up to a multiple of
    # 64 keeps matmuls aligned.
    return 64 * math.ceil(multiplier * hidden_size / 64)


class MiniMindConfig(PretrainedConfig):
    model_type = "minimind"

    def __init__(
        self,
        hidden_size: int = 512,
        num_hidden_layers: int = 8,
        num_attention_heads: int = 8,
        num_key_value_heads: int = 2,
        intermediate_size: int | None = None,
        ffn_multiplier: float = 8 / 3,
        head_dim: int | None = None,
        qk_norm: bool = False,
        vocab_size: int = 6400,
        max_position_embeddings: int = 32768,
        rope_theta: float = 1e6,
        rms_norm_eps: float = 1e-5,
        hidden_act: str = "silu",
        dropout: float = 0.0,
        flash_attn: bool = True,
        initializer_range: float = 0.02,
        # YaRN context extension, switched on for inference only (training runs at the original length).
        inference_rope_scaling: bool = False,
        yarn: dict | None = None,
        # Mixture-of-Experts: routed experts (top-k of a softmax router) + always-on shared experts (DeepSeekMoE;
        # n_shared_experts=0 is Qwen3-MoE). norm_topk_prob rescales the chosen experts' weights to sum to 1 (with
        # top-1: weight 1); a MiniMind2 checkpoint trained with top-1 had no rescaling: set it False for one.
        use_moe: bool = False,
        n_routed_experts: int = 4,
        num_experts_per_tok: int = 2,
        n_shared_experts: int = 1,
        scoring_func: str = "softmax",
        aux_loss_alpha: float = 0.1,
        seq_aux: bool = True,
        norm_topk_prob: bool = True,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        pad_token_id: int = 0,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        if head_dim is None and hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        if num_attention_heads % num_key_value_heads:
            raise ValueError(f"num_attention_heads {num_attention_heads} is not divisible by "
                             f"num_key_value_heads {num_key_value_heads}")
        if scoring_func != "softmax":
            raise ValueError(f"scoring_func {scoring_func!r} is not supported (only 'softmax')")
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.ffn_multiplier = ffn_multiplier
        self.intermediate_size = intermediate_size or _ffn_width(hidden_size, ffn_multiplier)
        self.qk_norm = qk_norm
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.hidden_act = hidden_act
        self.dropout = dropout
        self.flash_attn = flash_attn
        self.initializer_range = initializer_range
        self.inference_rope_scaling = inference_rope_scaling
        # Upstream calls this dict `rope_scaling`; transformers 5 reserves that name, so it lives under `yarn`.
        yarn = yarn or kwargs.pop("rope_scaling", None) or {}
        self.yarn = {"factor": 4.0, "original_max_position_embeddings": 2048, "beta_fast": 32.0, "beta_slow": 1.0,
                     **{k: v for k, v in yarn.items() if k != "type"}}
        self.use_moe = use_moe
        self.n_routed_experts = n_routed_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.n_shared_experts = n_shared_experts
        self.scoring_func = scoring_func
        self.aux_loss_alpha = aux_loss_alpha
        self.seq_aux = seq_aux
        self.norm_topk_prob = norm_topk_prob
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)


# Named sizes. The MiniMind2 and minimind-3 ones are upstream's; "tiny" is sized for the CPU quickstart and tests.
PRESETS = {
    "minimind2-small": dict(hidden_size=512, num_hidden_layers=8),                    # ≈25.8M
    "minimind2": dict(hidden_size=768, num_hidden_layers=16),                         # ≈104M
    "minimind2-moe": dict(hidden_size=640, num_hidden_layers=8, use_moe=True),        # 4 routed (top-2) + 1 shared
    # Upstream's current generation (Qwen3-shaped). Its YaRN: ×16 over 2,048 positions, cos/sin unscaled.
    "minimind-3": dict(hidden_size=768, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                       ffn_multiplier=math.pi, qk_norm=True, rms_norm_eps=1e-6,
                       yarn={"factor": 16.0, "attention_factor": 1.0}),                  # ≈63.9M
    "minimind-3-moe": dict(hidden_size=768, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                           ffn_multiplier=math.pi, qk_norm=True, rms_norm_eps=1e-6,
                           yarn={"factor": 16.0, "attention_factor": 1.0}, use_moe=True, n_routed_experts=4,
                           num_experts_per_tok=1, n_shared_experts=0, aux_loss_alpha=5e-4,
                           seq_aux=False),                                                # ≈198M, ≈64M active
    # ~1M: on a 2-core CPU's budget of minutes, more optimizer steps beat more width.
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=384, max_position_embeddings=2048),
}


def config_from_preset(name: str, **overrides) -> MiniMindConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return MiniMindConfig(**{**PRESETS[name], **overrides})


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # Statistics in fp32: bf16 has too few mantissa bits for a mean of squares over 512+ channels.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_inv_freq(config: MiniMindConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies of RoPE and the attention (cos/sin) scale; YaRN when inference_rope_scaling is on.
    Always computed on the CPU, also inside a torch.device("meta") block (load_native): meta arithmetic runs Python
    reference kernels that import torch._dynamo and sympy (+73 MB of RSS)."""
    dim, base, cpu = config.head_dim, config.rope_theta, torch.device("cpu")
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float, device=cpu) / dim))
    if not config.inference_rope_scaling:
        return inv_freq, 1.0
    # YaRN (Peng et al. 2023, arXiv:2309.00071): keep high-frequency dims (many rotations inside the original
    # window) as they are, interpolate low-frequency dims by `factor`, ramp linearly in between.
    rs = config.yarn
    factor, orig = rs["factor"], rs["original_max_position_embeddings"]
    beta_fast, beta_slow = rs.get("beta_fast", 32.0), rs.get("beta_slow", 1.0)

    def dim_for_rotations(n_rot):  # the dim index whose wavelength fits n_rot times into `orig`
        return dim * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(dim_for_rotations(beta_fast)), 0)
    high = min(math.ceil(dim_for_rotations(beta_slow)), dim - 1)
    ramp = ((torch.arange(dim // 2, dtype=torch.float, device=cpu) - low) / max(high - low, 1e-3)).clamp(0, 1)
    inv_freq = inv_freq / factor * ramp + inv_freq * (1 - ramp)
    attn_scale = rs.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
    return inv_freq, attn_scale


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: MiniMindConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv_heads, self.head_dim = (config.num_attention_heads, config.num_key_value_heads,
                                                        config.head_dim)
        d = config.hidden_size
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)
        self.qk_norm = config.qk_norm
        if self.qk_norm:  # minimind-3/Qwen3: bounds the attention logits' scale, so training tolerates larger lr
            self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.dropout = config.dropout
        self.flash = config.flash_attn

    def forward(self, x, cos, sin, mask, cache):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.qk_norm:  # per head, before the rotation
            q, k = self.q_norm(q), self.k_norm(k)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        dropout = self.dropout if self.training else 0.0
        rep = self.n_heads // self.n_kv_heads
        if self.flash and t == 1 and rep > 1 and mask is not None:
            # One new token against a cache (decoding): each key/value head's `rep` query heads become `rep` query
            # rows of that head, so the keys are read once per kv head instead of through the GQA kernel — the
            # same arithmetic (query head h still reads kv head h // rep), measured 6-8x faster in bf16 on a CPU
            # at batch 16-64 (1.3x in fp32). The mask [b|1, 1, 1, S] covers the `rep` rows alike.
            out = F.scaled_dot_product_attention(q.reshape(b, self.n_kv_heads, rep, self.head_dim), k, v,
                                                 attn_mask=mask, dropout_p=dropout)
            out = out.reshape(b, self.n_heads, 1, self.head_dim)
        elif self.flash:
            # mask is None exactly when plain causal masking is right (no cache, no padding). Passing an attn_mask
            # together with is_causal=True is an error, so the two are never combined.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                                 is_causal=mask is None, enable_gqa=True)
        else:  # the same computation spelled out, for reading
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            if mask is None:
                mask = torch.ones(t, k.shape[-2], dtype=torch.bool, device=x.device).tril()
            scores = scores.masked_fill(~mask, float("-inf"))
            out = F.dropout(scores.softmax(-1, dtype=torch.float).to(q.dtype), dropout, self.training) @ v
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: MiniMindConfig):
        super().__init__()
        d, f = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


class MoEGate(nn.Module):
    """Softmax router over routed experts, top-k, with a load-balancing auxiliary loss.

    seq_aux=True is DeepSeekMoE's sequence-level balance loss (arXiv:2401.06066, eq. 12-14): per sequence,
    alpha · Σ_e f_e · P_e with f_e the fraction of the sequence's top-k slots sent to expert e (scaled by E)
    and P_e the mean router probability of e. seq_aux=False is the same over all tokens of the batch (Switch-style).
    """

    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.top_k, self.n_experts = config.num_experts_per_tok, config.n_routed_experts
        self.alpha, self.seq_aux, self.norm_topk = config.aux_loss_alpha, config.seq_aux, config.norm_topk_prob
        self.weight = nn.Parameter(torch.empty(self.n_experts, config.hidden_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):  # x: [b, t, d]
        b, t, _ = x.shape
        probs = F.linear(x.reshape(b * t, -1).float(), self.weight.float()).softmax(-1)
        topk_w, topk_idx = probs.topk(self.top_k, dim=-1, sorted=False)
        if self.norm_topk:
            topk_w = topk_w / (topk_w.sum(-1, keepdim=True) + 1e-20)
        aux = probs.new_zeros(())
        if self.training and self.alpha > 0:
            slots = F.one_hot(topk_idx, self.n_experts).sum(1).float()  # [b·t, E]: 1 where routed
            if self.seq_aux:
                f = slots.view(b, t, -1).mean(1) * (self.n_experts / self.top_k)
                aux = (f * probs.view(b, t, -1).mean(1)).sum(-1).mean() * self.alpha
            else:
                f = slots.mean(0) * (self.n_experts / self.top_k)
                aux = (f * probs.mean(0)).sum() * self.alpha
        return topk_idx, topk_w, aux


class MoEFeedForward(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.experts = nn.ModuleList(FeedForward(config) for _ in range(config.n_routed_experts))
        self.gate = MoEGate(config)
        self.shared_experts = nn.ModuleList(FeedForward(config) for _ in range(config.n_shared_experts))
        self.aux_loss = None

    def forward(self, x):
        b, t, d = x.shape
        topk_idx, topk_w, self.aux_loss = self.gate(x)
        flat = x.reshape(-1, d)
        out = torch.zeros_like(flat)
        # One pass per expert over exactly the tokens routed to it: the same arithmetic whether the batch holds
        # one token or thousands. An expert that receives no token still runs on an empty slice, so its
        # parameters stay in the autograd graph and DDP's gradient all-reduce does not wait for them forever.
        for e, expert in enumerate(self.experts):
            token, slot = (topk_idx == e).nonzero(as_tuple=True)
            y = expert(flat[token]) * topk_w[token, slot, None].to(flat.dtype)
            out.index_add_(0, token, y)
        out = out.view(b, t, d)
        for shared in self.shared_experts:
            out = out + shared(x)
        return out


class DecoderLayer(nn.Module):
    def __init__(self, config: MiniMindConfig, layer_idx: int):
        super().__init__()
        self.self_attn = Attention(config, layer_idx)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MoEFeedForward(config) if config.use_moe else FeedForward(config)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class MiniMindModel(nn.Module):
    def __init__(self, config: MiniMindConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.register_buffer("inv_freq", torch.empty(config.head_dim // 2), persistent=False)
        self.reset_rope()

    def _apply(self, fn, recurse=True):
        # .to(torch.bfloat16) / .half() would round the RoPE frequencies with the weights: the angle is
        # position × frequency, so bf16 frequencies are ~0.5 rad off at position 512 and ~2 at 2048. They stay fp32
        # (recomputed exactly) whatever dtype the weights take; device moves apply as usual.
        super()._apply(fn, recurse)
        if self.inv_freq.dtype != torch.float32:
            self.inv_freq = torch.empty_like(self.inv_freq, dtype=torch.float32)
            self.reset_rope()
        return self

    def reset_rope(self):
        """(Re)build the rotation frequencies from the config, e.g. after switching inference_rope_scaling (YaRN)
        on a loaded model."""
        inv_freq, self.rope_scale = rope_inv_freq(self.config)
        self.inv_freq.copy_(inv_freq.to(self.inv_freq.device))

    def rope(self, position_ids, dtype):
        # position_ids: [b, t] → cos/sin [b, 1, t, head_dim], built in fp32 (bf16 positions lose precision past 256).
        freqs = position_ids[..., None].float() * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos() * self.rope_scale, emb.sin() * self.rope_scale
        return cos[:, None].to(dtype), sin[:, None].to(dtype)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None):
        b, t = input_ids.shape
        past = cache.get_seq_length() if cache is not None else 0
        padded = attention_mask is not None and not bool(attention_mask.all())
        if position_ids is None:
            if padded:  # left padding shifts where each row starts: count only real tokens
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -t:]
            else:
                position_ids = torch.arange(past, past + t, device=input_ids.device).expand(b, t)
        mask = None
        if padded or past > 0:
            q_pos = torch.arange(past, past + t, device=input_ids.device)
            k_pos = torch.arange(past + t, device=input_ids.device)
            mask = (k_pos[None, :] <= q_pos[:, None])[None, None]  # [1, 1, t, past+t]
            if padded:
                keep = attention_mask.bool()[:, None, None, :past + t]
                # A padding query may see no key at all; let it see itself so softmax stays finite (its output is
                # never used: padded positions carry label -100 and are not attended to by real tokens).
                mask = mask & (keep | (k_pos[None, :] == q_pos[:, None])[None, None])
        h = self.dropout(self.embed_tokens(input_ids))
        cos, sin = self.rope(position_ids, h.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin, mask, cache)
        return self.norm(h)


@dataclass
class MiniMindCausalLMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: object | None = None  # transformers 5 names the KV cache `cache`; `.past_key_values` still reads it


class KVCache:
    """A preallocated (static) key/value cache for our own generator: no torch.cat per token.

    Duck-types the parts of transformers' Cache that the model uses (update, get_seq_length), so the model code
    is the same for our generator and for transformers' generate() with its DynamicCache.
    """

    def __init__(self, config: MiniMindConfig, max_len: int):
        self.n_layers, self.max_len, self.length = config.num_hidden_layers, max_len, 0
        self.k = self.v = None

    def update(self, k, v, layer_idx):
        if self.k is None:  # allocated on first use, so it takes the dtype autocast gives the keys
            b, h, _, d = k.shape
            self.k = k.new_zeros(self.n_layers, b, h, self.max_len, d)
            self.v = torch.zeros_like(self.k)
        start, end = self.length, self.length + k.shape[-2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} tokens > max_len {self.max_len}")
        self.k[layer_idx, :, :, start:end] = k
        self.v[layer_idx, :, :, start:end] = v
        if layer_idx == self.n_layers - 1:  # the last layer has written: the step is complete
            self.length = end
        return self.k[layer_idx, :, :, :end], self.v[layer_idx, :, :, :end]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int):
        """Each row's keys and values copied `repeats` times in a row (transformers' Cache has the same method):
        a prompt read once, continued several ways."""
        if self.k is not None:
            self.k, self.v = self.k.repeat_interleave(repeats, 1), self.v.repeat_interleave(repeats, 1)

    def select_rows(self, index: torch.Tensor):
        """Keep only the batch rows in `index` (the generator drops finished rows); DynamicCache has no such
        method, so the generator drops rows only from this cache."""
        if self.k is not None:
            self.k, self.v = self.k[:, index], self.v[:, index]


class MiniMindForCausalLM(nn.Module):
    """The language model: MiniMindModel + output head (tied to the embedding by default).

    The few PreTrainedModel conveniences the repo uses are here (.device, .dtype, get/set_input_embeddings); for
    transformers' generate() or save_pretrained, wrap it with model_minimind_hf.to_hf (shares the weights)."""

    def __init__(self, config: MiniMindConfig | None = None):
        super().__init__()
        self.config = config = config or MiniMindConfig()
        self.model = MiniMindModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if not self.lm_head.weight.is_meta:  # a meta model (load_native) gets its tensors from a checkpoint
            self.apply(self._init_weights)  # children before parents, as PreTrainedModel.post_init: same draws
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, MoEGate):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        elif isinstance(module, MiniMindModel):
            module.reset_rope()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def forward(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False, labels=None,
                logits_to_keep=0, position_ids=None, cache=None, loss_reduction="mean", return_logits=True,
                **kwargs):
        """labels are aligned with input_ids (shifted here); -100 marks positions that carry no loss.
        loss_reduction="sum" with return_logits=False is the training path: the loss is computed a block of rows
        at a time and the full [b, t, vocab] logits never exist (see lm_loss); with return_logits (transformers'
        convention) the loss comes from the logits.
        aux_loss (MoE balance) is returned apart from loss: the training engine adds it."""
        cache = past_key_values if past_key_values is not None else cache
        if use_cache and cache is None:
            from transformers import DynamicCache
            cache = DynamicCache()
        h = self.model(input_ids, attention_mask, position_ids, cache)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        loss = logits = None
        if return_logits:
            logits = self.lm_head(h)
        if labels is not None:
            if logits is None:
                loss = lm_loss(h, self.lm_head, labels)
            else:  # the logits exist already: the loss from them, not a second pass through the head
                loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                       ignore_index=-100, reduction="sum")
            if loss_reduction == "mean":
                loss = loss / (labels[:, 1:] != -100).sum().clamp(min=1)
        aux = sum((l.mlp.aux_loss for l in self.model.layers if isinstance(l.mlp, MoEFeedForward)),
                  h.new_zeros((), dtype=torch.float))
        return MiniMindCausalLMOutput(loss=loss, aux_loss=aux, logits=logits, cache=cache)


def lm_loss(h, head: nn.Module, labels, rows: int | None = None, static: bool | None = None):
    """Summed next-token cross-entropy of hidden states h [b, t, d] under the output head, labels aligned with h.

    The head is applied `rows` positions at a time: on a CPU each 1,024-row block of fp32 logits becomes
    log-probabilities while still in cache, instead of a [b·t, vocab] tensor making several trips through memory
    (autograd still keeps every block's log-probabilities for backward). On a CPU rows without a label (SFT
    prompts, padding) are also dropped before the head. That drop has a data-dependent size, so `static` (the
    default on a GPU/MPS and under torch.compile) keeps every row and lets ignore_index mask them: counting the kept
    rows would stall the GPU on a device→host copy every micro-batch, and break the compiled graph, recompiling
    whenever the count changes. There the blocks are 8,192 rows.
    """
    if static is None:
        static = h.device.type != "cpu" or torch.compiler.is_compiling()
    rows = rows or (8192 if static else 1024)
    h, y = h[:, :-1].flatten(0, 1), labels[:, 1:].flatten()
    if not static:
        keep = y != -100
        h, y = h[keep], y[keep]
    if not y.numel():  # nothing to predict: a zero that still reaches every parameter (DDP expects gradients)
        return head(h).sum() * 0.0
    total = 0.0
    for i in range(0, y.numel(), rows):
        total = total + F.cross_entropy(head(h[i:i + rows]).float(), y[i:i + rows], ignore_index=-100,
                                        reduction="sum")
    return total


def count_params(model: nn.Module, active_only: bool = False) -> int:
    """Unique parameters (tied embedding counted once). active_only: per-token parameters of an MoE
    (top-k routed experts instead of all of them) — the figure to equalize when comparing MoE with dense."""
    seen, total = set(), 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:  # the object, not its storage: a model on the meta device has no storage to compare
            continue
        seen.add(id(p))
        total += p.numel()
    if active_only and getattr(model.config, "use_moe", False):
        c = model.config
        expert = 3 * c.hidden_size * c.intermediate_size
        total -= c.num_hidden_layers * expert * (c.n_routed_experts - c.num_experts_per_tok)
    return total
