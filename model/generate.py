"""Our own streaming generator: a static KV cache, the usual sampling knobs, one token per step yielded as it comes.

transformers' generate() also works on our network (model_minimind_hf.to_hf(model).generate(...)); this one exists
because it is short enough to read in one sitting, does less per token (no per-step cache concatenation, no logits
processors), and needs no transformers.generation import (130-160 MB of RSS, see model_minimind.py).
"""
from collections.abc import Iterator

import torch
from transformers import DynamicCache

from .model_minimind import KVCache, MiniMindForCausalLM


def sample_next(logits, generated, temperature=0.85, top_p=0.85, top_k=0, repetition_penalty=1.0):
    """Pick the next token per row from last-position logits [b, V]; generated [b, T] holds prompt + output so far.

    Order as in transformers: repetition penalty → temperature → top-k → top-p. temperature 0 is greedy, and so is
    any temperature or top_p below 1e-5: they keep only the top token anyway, while logits / a tinier temperature
    overflow float32 (a NaN softmax) and a top_p that rounds to 0 in float32 would drop every token.
    """
    logits = logits.float()
    if repetition_penalty != 1.0:
        # CTRL (Keskar et al. 2019): make already-seen tokens less likely, whatever the sign of their logit.
        seen = logits.gather(1, generated)
        seen = torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty)
        logits = logits.scatter(1, generated, seen)
    if temperature < 1e-5 or 0 < top_p < 1e-5:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0 < top_p < 1:
        # Nucleus sampling (Holtzman et al. 2019): keep the smallest set of tokens whose mass reaches top_p.
        sorted_logits, order = logits.sort(-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already reached top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return sample_from(logits.softmax(-1))


def sample_from(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of probs [b, V] by inverting its cumulative sum with a single uniform number per row.

    The same distribution as torch.multinomial(probs, 1), which on a CPU draws an exponential number for every
    vocabulary entry: a quarter of a tiny model's decode step (measured with torch.profiler, batch 8, vocab 6,400).
    Tokens of probability 0 (cut by top-k / top-p) are never drawn: their cumulative sum equals the one before.
    """
    cdf = probs.float().cumsum(-1)
    total = cdf[:, -1:].contiguous()
    target = torch.rand(total.shape, device=cdf.device) * total
    index = torch.searchsorted(cdf, target, right=True)
    # u · total can round up to total itself: then take the last token with mass (where the sum stops growing)
    last = torch.searchsorted(cdf, total, right=False)
    return torch.minimum(index, last).squeeze(-1)


@torch.inference_mode()
def stream_generate(model, input_ids, attention_mask=None, max_new_tokens=256, temperature=0.85, top_p=0.85,
                    top_k=0, repetition_penalty=1.0, eos_token_id=None, pad_token_id=0,
                    on_step=None, num_generations=1) -> Iterator[torch.Tensor]:
    """Yield the next token of every row ([b] LongTensor) until all rows hit eos or max_new_tokens.

    Batches are left-padded (attention_mask 0 on the left). Rows that finished keep yielding pad_token_id.
    on_step(logits, token), if given, is called before each yield with that step's raw last-position logits [b, V]
    (the model's own, before repetition penalty, temperature, top-k and top-p; not to be modified) and the token.
    num_generations g continues every prompt g times (rows r·g … r·g+g−1 of the b·g yielded): the prompt is read
    once and its keys and values copied to its g rows (RL samples a group per prompt).
    """
    model.eval()
    if max_new_tokens < 1:
        return
    b, t = input_ids.shape
    if eos_token_id is None:
        eos_token_id = model.config.eos_token_id
    padded = attention_mask is not None and not bool(attention_mask.all())
    mask = attention_mask if padded else None
    # our static cache for our model; any other (an exported Llama via --load_from) gets transformers' own
    cache = KVCache(model.config, t + max_new_tokens) if isinstance(model, MiniMindForCausalLM) else DynamicCache()
    logits = model(input_ids, attention_mask=mask, cache=cache, logits_to_keep=1).logits[:, -1]
    g = num_generations
    if g > 1:
        cache.batch_repeat_interleave(g)
        logits, input_ids = logits.repeat_interleave(g, 0), input_ids.repeat_interleave(g, 0)
        mask = mask.repeat_interleave(g, 0) if mask is not None else None
        b *= g
    # the repetition penalty is the only reader of the text so far: without it, no growing copy per token
    generated = input_ids
    done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
    rows = torch.arange(b, device=input_ids.device)  # which of the b rows the running batch holds
    for step in range(max_new_tokens):
        token = sample_next(logits, generated, temperature, top_p, top_k, repetition_penalty)
        if len(rows) < b:  # back to all b rows: finished ones yield the pad id (and show on_step logits of 0)
            token = token.new_full((b,), pad_token_id).index_copy_(0, rows, token)
        token = token.masked_fill(done, pad_token_id)
        if on_step is not None:
            if len(rows) < b:
                logits = logits.new_zeros(b, logits.shape[-1]).index_copy_(0, rows, logits)
            on_step(logits, token)
        yield token
        done |= token == eos_token_id
        if bool(done.all()) or step + 1 == max_new_tokens:
            return
        token = token[rows]
        finished = done[rows]
        if isinstance(cache, KVCache) and int(finished.sum()) * 4 >= len(rows):
            # A quarter of the running rows have finished: drop them from the batch (and their keys and values)
            # instead of computing tokens nobody reads, as a serving engine does. The live rows' numbers do not
            # change; a few drops per call keep the copying small.
            live = (~finished).nonzero().squeeze(-1)
            rows, token, generated = rows[live], token[live], generated[live]
            mask = mask[live] if mask is not None else None
            cache.select_rows(live)
        if repetition_penalty != 1.0:
            generated = torch.cat([generated, token[:, None]], dim=1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logits = model(token[:, None], attention_mask=mask, cache=cache, logits_to_keep=1).logits[:, -1]


def generate(model, input_ids, **kwargs) -> torch.Tensor:
    """Prompt + generated tokens as one [b, T] tensor (the non-streaming convenience)."""
    steps = list(stream_generate(model, input_ids, **kwargs))
    return torch.cat([input_ids, torch.stack(steps, 1)], dim=1) if steps else input_ids
