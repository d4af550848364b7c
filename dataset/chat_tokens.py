"""A chat rendered with the tokenizer's chat template into input ids and labels that supervise the assistant
replies (label convention: see dataset/lm_dataset.py)."""
import numpy as np

from dataset.bounded_tokenize import CUT_MARGIN, _enough, prefix_char_bound
from dataset.tool_messages import template_arguments

IGNORE_INDEX = -100


# ----------------------------------------------------------------- chat (SFT/DPO)

def _render(tokenizer, messages, add_generation_prompt=False):
    messages, extra = template_arguments(messages)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **extra)


def assistant_char_spans(tokenizer, messages, only_last=False):
    """Render a chat and find the character span of each assistant reply.

    Works for any chat template by rendering prefixes: the reply to message
    ``k`` starts where ``render(messages[:k], add_generation_prompt=True)``
    ends (so the role header ``<|im_start|>assistant\\n`` is NOT in the span)
    and ends right after the eos token that closes it in
    ``render(messages[:k+1])`` (so ``<|im_end|>`` IS in the span, but the
    template's trailing ``\\n`` is not). The model thus learns to write the
    reply and to stop, and nothing else.

    Returns (rendered text, [(start, end), ...]).
    """
    full = _render(tokenizer, messages)
    return full, _spans(tokenizer, messages, _targets(messages, only_last), full)


def _targets(messages, only_last):
    """Indices of the assistant messages to supervise."""
    targets = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    return targets[-1:] if only_last else targets


def _spans(tokenizer, messages, targets, full, first_message=None, limit=None):
    """Character spans in ``full`` (the rendered ``messages``) of the assistant
    replies ``targets``; see assistant_char_spans. ``first_message``: the
    uncut first message when ``messages[0]``'s content was cut (_truncate_chat),
    to locate a reply that opens the chat exactly as the uncut chat would.
    ``limit``: only spans starting before this character are wanted."""
    eos = tokenizer.eos_token
    spans = []
    for k in targets:
        if k > 0:
            prefix = _render(tokenizer, messages[:k], add_generation_prompt=True)
            if limit is not None and len(prefix) >= limit:
                break  # this reply and all later ones start past the limit
        # (the last message's prefix is the whole chat: save a render)
        upto = full if k == len(messages) - 1 else _render(tokenizer, messages[:k + 1])
        if not full.startswith(upto):
            # e.g. templates that rewrite earlier turns (strip old <think>)
            raise ValueError("chat template is not prefix-stable: rendering the first "
                             f"{k + 1} messages is not a prefix of the full conversation")
        end = upto.rfind(eos)
        if end < 0:
            raise ValueError(f"rendered assistant message {k} is not closed by the eos token {eos!r}")
        if k > 0:
            start = len(prefix)
            if not upto.startswith(prefix):
                # A generation prompt that pre-fills part of a reply differs from a turn that fills it otherwise:
                # upstream minimind-3 prompts with an empty "<think>\n\n</think>\n\n" but renders a turn with
                # reasoning as "<think>\nreasoning…". The reply is then what follows the longest common prefix
                # (here the reasoning), provided the earlier turns render as a prefix.
                before = _render(tokenizer, messages[:k])
                start = next((i for i, (a, b) in enumerate(zip(prefix, upto)) if a != b), min(len(prefix), len(upto)))
                if not upto.startswith(before) or start < len(before):
                    raise ValueError("chat template is not prefix-stable: the generation prompt "
                                     f"before message {k} does not match the rendered conversation")
        else:
            # A chat that opens with the assistant: transformers refuses to
            # render an empty conversation, so locate the content instead (it
            # sits right before the closing eos).
            content = messages[k]["content"]
            if first_message is not None and first_message is not messages[0]:
                # Cut content: a prefix of it may also occur later on; locate
                # the uncut one (the text before it is the same).
                content = first_message["content"]
                upto0 = _render(tokenizer, [first_message])
                start = upto0.rfind(content, 0, upto0.rfind(eos)) if content else upto0.rfind(eos)
            else:
                start = upto.rfind(content, 0, end) if content else end
        if not start <= end:
            raise ValueError(f"could not locate assistant message {k} in the rendered chat")
        spans.append((start, end + len(eos)))
    return spans


def chat_ids_and_labels(tokenizer, messages, only_last=False, max_tokens=None):
    """Token ids of the rendered chat and labels supervising the assistant spans.

    Characters -> tokens through the fast tokenizer's offset mapping: a token
    is supervised iff it starts inside a span. Each span must end on the eos
    token id (checked), which catches templates/tokenizers where the closing
    marker is not a single special token.

    ``max_tokens``: the caller uses only the first max_tokens ids/labels; a
    long chat then returns just those (the same values), computed from a
    bounded prefix of it (see "bounded tokenization" above).
    """
    if max_tokens is not None:
        out = _chat_prefix_ids_and_labels(tokenizer, messages, only_last, max_tokens)
        if out is not None:
            return out
    text, spans = assistant_char_spans(tokenizer, messages, only_last=only_last)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    starts = np.asarray([s for s, _ in enc["offset_mapping"]], dtype=np.int64)
    return ids, _span_labels(tokenizer, text, ids, starts, spans, len(text))


def _span_labels(tokenizer, text, ids, starts, spans, checked_upto):
    """Labels: ids of the tokens starting inside a span, else IGNORE_INDEX.
    The eos check applies to spans ending by ``checked_upto`` (the part of a
    cut text whose tokens are final)."""
    labels = np.full_like(ids, IGNORE_INDEX)
    for a, b in spans:
        inside = np.nonzero((starts >= a) & (starts < b))[0]
        if b <= checked_upto and (len(inside) == 0 or ids[inside[-1]] != tokenizer.eos_token_id):
            raise ValueError(f"assistant span {text[a:b]!r} does not end with the eos token "
                             f"{tokenizer.eos_token!r} (id {tokenizer.eos_token_id})")
        labels[inside] = ids[inside]
    return labels


def _truncate_chat(messages, n_chars):
    """The chat cut so that it renders like ``messages`` for (at least) the
    first ``n_chars`` characters, or None if nothing needs cutting.

    A template writes each content verbatim after all earlier ones, so a
    content never starts before the total length of the earlier contents:
    contents are cut to n_chars characters, and the messages after the one
    that brings the total to n_chars are dropped. (Checked by the caller.)
    """
    out, total = [], 0
    for m in messages:
        if total >= n_chars:
            break
        c = m["content"]
        if len(c) > n_chars:
            m = {**m, "content": c[:n_chars]}
        out.append(m)
        total += len(m["content"])
    if len(out) == len(messages) and all(a is b for a, b in zip(out, messages)):
        return None
    return out


def _chat_prefix_ids_and_labels(tokenizer, messages, only_last, max_tokens):
    """chat_ids_and_labels(...)[:max_tokens] from a bounded prefix of the chat,
    or None when the chat is short (or the template does not allow cutting):
    the caller then takes the exact path."""
    n_chars = prefix_char_bound(tokenizer, max_tokens)
    full = None
    while True:
        kept = _truncate_chat(messages, n_chars)
        if kept is None:
            return None  # short enough: tokenize all of it
        if full is None:
            full = _render(tokenizer, messages)  # characters only: cheap next to tokens
        text = _render(tokenizer, kept)
        if len(text) < n_chars or full[:n_chars] != text[:n_chars]:
            return None  # content-dependent template: no shortcut
        # Targets among the kept messages (a dropped final reply stays unsupervised).
        targets = [k for k in _targets(messages, only_last) if k < len(kept)]
        spans = [(a, min(b, n_chars)) for a, b in _spans(tokenizer, kept, targets, text, first_message=messages[0],
                                                         limit=n_chars)]
        text = text[:n_chars]
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        starts = [a for a, _ in enc["offset_mapping"]]
        if _enough(starts, max_tokens, n_chars):
            ids = np.asarray(enc["input_ids"], dtype=np.int64)
            labels = _span_labels(tokenizer, text, ids, np.asarray(starts, dtype=np.int64), spans,
                                  n_chars - CUT_MARGIN)
            return ids[:max_tokens], labels[:max_tokens]
        n_chars *= 2
