"""MiniMind's training datasets: pretraining text, multi-turn SFT, and DPO pairs.

Every dataset reads its jsonl through ``JsonlIndex`` (offsets only, constant
memory, all lines validated up front) and returns dicts of 1-D LongTensors of
length ``max_seq_len``, so ``torch.utils.data.default_collate`` batches them.

Label convention (shared with the training engine):
    ``labels`` is aligned with ``input_ids`` (NOT shifted; the model shifts
    inside its loss) and is -100 wherever a position is not supervised
    (padding, prompts, role headers). The number of supervised tokens of a
    sample is ``(labels != -100).sum()``; it can be 0 when ``max_seq_len`` is
    shorter than the prompt, and the engine is expected to count/skip those.

File formats (upstream MiniMind's):
    pretrain: {"text": "..."}
    sft:      {"conversations": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
    dpo:      {"chosen": [messages...], "rejected": [messages...]}
"""

import hashlib
import json
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from dataset.jsonl_index import (JsonlIndex, PROGRESS_MIN_BYTES, cache_dir_for, cache_lock, file_signature,
                                 validator_name)
from model.atomic_file import atomic_write_bytes, atomic_write_json

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")


# ----------------------------------------------------------------- validators
# Module-level functions (not lambdas) so their name+code key the index cache.

def validate_pretrain(obj):
    if "text" not in obj:
        raise ValueError("missing field 'text'")
    if not isinstance(obj["text"], str):
        raise ValueError(f"field 'text' must be a string, got {type(obj['text']).__name__}")


def _check_messages(msgs, field):
    """Shared structural check of a chat (list of role/content dicts)."""
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"field '{field}' must be a non-empty list of messages")
    for j, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise ValueError(f"{field}[{j}] must be an object, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            if "role" not in m:
                raise ValueError(f"{field}[{j}] has no 'role'")
            raise ValueError(f"unknown role {role!r} in {field}[{j}] (expected one of {', '.join(ROLES)})")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"{field}[{j}] ('{role}') must have a string 'content', "
                             f"got {type(m.get('content')).__name__}")


def validate_sft(obj):
    if "conversations" not in obj:
        raise ValueError("missing field 'conversations'")
    msgs = obj["conversations"]
    _check_messages(msgs, "conversations")
    if not any(m["role"] == "assistant" for m in msgs):
        raise ValueError("conversation has no assistant turn (nothing to supervise)")


def validate_dpo(obj):
    for field in ("chosen", "rejected"):
        if field not in obj:
            raise ValueError(f"missing field '{field}'")
        _check_messages(obj[field], field)
        if obj[field][-1]["role"] != "assistant":
            raise ValueError(f"'{field}' must end with an assistant message")
    # DPO compares two replies to the SAME prompt; differing prompts would make
    # the preference signal meaningless, so reject them up front.
    if obj["chosen"][:-1] != obj["rejected"][:-1]:
        raise ValueError("'chosen' and 'rejected' must share the prompt (all messages but the last)")


# -------------------------------------------------------------------- helpers

def _pad_id(tokenizer):
    # Fall back to eos for tokenizers without a pad token; padded positions
    # are never supervised, so the id only needs to be a valid embedding row.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _pad(ids, labels, max_seq_len, pad_id):
    """Truncate from the right and right-pad to exactly max_seq_len."""
    ids, labels = ids[:max_seq_len], labels[:max_seq_len]
    out_ids = torch.full((max_seq_len,), pad_id, dtype=torch.long)
    out_labels = torch.full((max_seq_len,), IGNORE_INDEX, dtype=torch.long)
    out_ids[:len(ids)] = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    out_labels[:len(labels)] = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    return out_ids, out_labels


def tokenizer_fingerprint(tokenizer):
    """Hash of everything that decides token ids (vocab, merges, pre-tokenizer).

    Keys the packed-token cache, so a retrained tokenizer never reuses ids
    produced by the old one.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        # transformers toggles truncation/padding on the backend per call;
        # they do not change the ids, so they must not change the key.
        spec.pop("truncation", None)
        spec.pop("padding", None)
        spec = json.dumps(spec, sort_keys=True)
    else:
        spec = json.dumps(sorted(tokenizer.get_vocab().items()))
    spec += f"|bos={tokenizer.bos_token_id}|eos={tokenizer.eos_token_id}"
    return hashlib.sha1(spec.encode("utf-8")).hexdigest()[:16]


class _JsonlDataset(Dataset):
    """Common plumbing: the validated index and error locations."""

    validator = None

    def __init__(self, data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir=None):
        if max_seq_len < 1:
            raise ValueError("max_seq_len must be >= 1")
        self.data_path = data_path
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.pad_id = _pad_id(tokenizer)
        self.index = JsonlIndex(data_path, validate=type(self).validator, skip_bad_lines=skip_bad_lines,
                                cache_dir=cache_dir)

    @property
    def n_bad(self):
        """Lines skipped because they were malformed (skip_bad_lines=True)."""
        return self.index.n_bad

    def __len__(self):
        return len(self.index)


# ------------------------------------------------------------------- pretrain

class PretrainDataset(_JsonlDataset):
    """Plain-text pretraining samples.

    Unpacked (default): one line -> ``bos + tokens(text) + eos``, truncated to
    ``max_seq_len`` (a long document loses its tail, eos included, as
    upstream), right-padded with the pad id; labels are the ids with padding
    set to -100.

    ``packing=True``: the whole file is tokenized once into an on-disk token
    stream (``bos+doc+eos`` per document, memmapped), and sample ``i`` is the
    window ``[i*max_seq_len, (i+1)*max_seq_len)`` of that stream, all tokens
    supervised. Windows do not overlap; the final partial window is kept and
    padded (its padding is -100) rather than dropping data.

    Returns ``{"input_ids": LongTensor[max_seq_len], "labels": LongTensor[max_seq_len]}``.
    """

    validator = staticmethod(validate_pretrain)

    def __init__(self, data_path, tokenizer, max_seq_len=512, skip_bad_lines=False, packing=False,
                 cache_dir=None, show_progress=None):
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)
        self.packing = packing
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        if self.bos_id is None or self.eos_id is None:
            raise ValueError("tokenizer needs bos and eos tokens for pretraining samples")
        self._tokens = None
        if packing:
            self._token_path, self.n_tokens = self._build_token_cache(cache_dir, show_progress)
            # ceil: keep the last partial window (padded) instead of dropping it.
            self._n_windows = (self.n_tokens + max_seq_len - 1) // max_seq_len

    def __len__(self):
        return self._n_windows if self.packing else len(self.index)

    # -- packing ------------------------------------------------------------
    def _token_dtype(self):
        # uint16 halves the cache (and page-cache footprint) for small vocabs.
        return np.uint16 if len(self.tokenizer) <= 65536 else np.uint32

    def _build_token_cache(self, cache_dir, show_progress, batch_docs=1000):
        """Tokenize the file into ``tokens-<tokenizer hash>.bin``; reuse if current.

        Returns (path, number of tokens). Streams in batches of documents
        (fast-tokenizer batch encode), so memory stays bounded by one batch.
        """
        dtype = self._token_dtype()
        tok_hash = tokenizer_fingerprint(self.tokenizer)
        key = {"version": 1, **file_signature(self.data_path), "tokenizer": tok_hash,
               "dtype": np.dtype(dtype).name, "validator": validator_name(type(self).validator),
               # which lines are in the stream (skip_bad_lines may drop some)
               "n_docs": len(self.index), "n_bad": self.index.n_bad}
        cdir = cache_dir_for(self.data_path, cache_dir)
        if cdir is None:
            raise OSError(f"no writable folder for the token cache of {self.data_path}")
        base = os.path.join(cdir, f"tokens-{tok_hash}")
        n_tokens = self._load_token_cache(base, key, dtype)
        if n_tokens is None:
            # One process tokenizes; concurrent ones (DDP ranks) wait for it.
            with cache_lock(base):
                n_tokens = self._load_token_cache(base, key, dtype)
                if n_tokens is None:
                    n_tokens = self._write_token_cache(base, key, dtype, show_progress, batch_docs)
        return base + ".bin", n_tokens

    @staticmethod
    def _load_token_cache(base, key, dtype):
        """Number of cached tokens if ``base`` holds a complete cache for ``key``."""
        try:
            with open(base + ".json", "r", encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("key") == key and os.path.getsize(base + ".bin") == meta["n_tokens"] * np.dtype(dtype).itemsize:
                return meta["n_tokens"]
        except (OSError, ValueError, KeyError):
            pass
        return None

    def _write_token_cache(self, base, key, dtype, show_progress, batch_docs):
        show = show_progress if show_progress is not None else os.path.getsize(self.data_path) >= PROGRESS_MIN_BYTES
        bar = None
        if show:
            from tqdm import tqdm
            bar = tqdm(total=len(self.index), unit="doc", desc=f"tokenizing {os.path.basename(self.data_path)}")
        n_tokens = 0
        max_id = np.iinfo(dtype).max

        def write(f):
            nonlocal n_tokens
            batch = []

            def flush():
                nonlocal n_tokens
                enc = self.tokenizer(batch, add_special_tokens=False)["input_ids"]
                flat = []
                for ids in enc:
                    flat.append(self.bos_id)
                    flat.extend(ids)
                    flat.append(self.eos_id)
                arr = np.asarray(flat, dtype=np.int64)
                if arr.size and arr.max() > max_id:  # guard the narrowing cast
                    raise ValueError(f"token id {arr.max()} does not fit {np.dtype(dtype).name}")
                f.write(arr.astype(dtype).tobytes())
                n_tokens += arr.size
                if bar is not None:
                    bar.update(len(batch))
                batch.clear()

            for obj in self.index:  # file order, sequential reads
                batch.append(obj["text"])
                if len(batch) >= batch_docs:
                    flush()
            if batch:
                flush()

        try:
            atomic_write_bytes(base + ".bin", write)
        finally:
            if bar is not None:
                bar.close()
        atomic_write_json(base + ".json", {"key": key, "n_tokens": n_tokens})
        return n_tokens

    def _token_array(self):
        # Opened lazily: a memmap must not be pickled into DataLoader workers
        # (it would be copied whole); each process maps the file itself.
        if self._tokens is None and self.n_tokens > 0:
            self._tokens = np.memmap(self._token_path, dtype=self._token_dtype(), mode="r")
        return self._tokens

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_tokens"] = None
        return state

    # -- items ----------------------------------------------------------------
    def __getitem__(self, i):
        L = self.max_seq_len
        if self.packing:
            if not -self._n_windows <= i < self._n_windows:
                raise IndexError(f"window {i} out of range for {self._n_windows}")
            i %= self._n_windows
            ids = np.asarray(self._token_array()[i * L:(i + 1) * L], dtype=np.int64)
            input_ids, labels = _pad(ids, ids, L, self.pad_id)
        else:
            text = self.index[i]["text"]
            body = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = [self.bos_id] + body + [self.eos_id]
            input_ids, labels = _pad(ids, ids, L, self.pad_id)
        return {"input_ids": input_ids, "labels": labels}


# ----------------------------------------------------------------- chat (SFT/DPO)

def _render(tokenizer, messages, add_generation_prompt=False):
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


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
    eos = tokenizer.eos_token
    full = _render(tokenizer, messages)
    targets = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    if only_last:
        targets = targets[-1:]
    spans = []
    for k in targets:
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
            prefix = _render(tokenizer, messages[:k], add_generation_prompt=True)
            if not upto.startswith(prefix):
                raise ValueError("chat template is not prefix-stable: the generation prompt "
                                 f"before message {k} does not match the rendered conversation")
            start = len(prefix)
        else:
            # A chat that opens with the assistant: transformers refuses to
            # render an empty conversation, so locate the content instead (it
            # sits right before the closing eos).
            content = messages[k]["content"]
            start = upto.rfind(content, 0, end) if content else end
        if not start <= end:
            raise ValueError(f"could not locate assistant message {k} in the rendered chat")
        spans.append((start, end + len(eos)))
    return full, spans


def chat_ids_and_labels(tokenizer, messages, only_last=False):
    """Token ids of the rendered chat and labels supervising the assistant spans.

    Characters -> tokens through the fast tokenizer's offset mapping: a token
    is supervised iff it starts inside a span. Each span must end on the eos
    token id (checked), which catches templates/tokenizers where the closing
    marker is not a single special token.
    """
    text, spans = assistant_char_spans(tokenizer, messages, only_last=only_last)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    starts = np.asarray([s for s, _ in enc["offset_mapping"]], dtype=np.int64)
    labels = np.full_like(ids, IGNORE_INDEX)
    for a, b in spans:
        inside = np.nonzero((starts >= a) & (starts < b))[0]
        if len(inside) == 0 or ids[inside[-1]] != tokenizer.eos_token_id:
            raise ValueError(f"assistant span {text[a:b]!r} does not end with the eos token "
                             f"{tokenizer.eos_token!r} (id {tokenizer.eos_token_id})")
        labels[inside] = ids[inside]
    return ids, labels


class _ChatDataset(_JsonlDataset):
    def __init__(self, data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("SFT/DPO datasets need a fast tokenizer (offset mapping)")
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no eos token to close assistant replies")
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)

    def _encode(self, i, messages, only_last):
        try:
            ids, labels = chat_ids_and_labels(self.tokenizer, messages, only_last=only_last)
        except Exception as e:
            # Name the line: a rendering failure deep in a run is otherwise
            # impossible to trace back to the data.
            raise ValueError(f"{self.index.where(i)}: {e}") from e
        return _pad(ids, labels, self.max_seq_len, self.pad_id)


class SFTDataset(_ChatDataset):
    """Multi-turn chat SFT (upstream ``sft_*.jsonl``).

    Supervises every assistant reply plus its closing ``<|im_end|>``; system,
    user, role headers, the newline after ``<|im_end|>`` and padding are -100.
    Truncated from the right to ``max_seq_len``.

    Returns ``{"input_ids", "labels"}``, LongTensors of length max_seq_len.
    """

    validator = staticmethod(validate_sft)

    def __init__(self, data_path, tokenizer, max_seq_len=512, skip_bad_lines=False, cache_dir=None):
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)

    def __getitem__(self, i):
        msgs = self.index[i]["conversations"]
        input_ids, labels = self._encode(i, msgs, only_last=False)
        return {"input_ids": input_ids, "labels": labels}


class DPODataset(_ChatDataset):
    """Preference pairs (upstream ``dpo.jsonl``).

    ``chosen`` and ``rejected`` share the prompt and end with an assistant
    reply; only that final reply (+ ``<|im_end|>``) is supervised in each.

    Returns ``{"chosen_input_ids", "chosen_labels", "rejected_input_ids",
    "rejected_labels"}``, LongTensors of length max_seq_len.
    """

    validator = staticmethod(validate_dpo)

    def __init__(self, data_path, tokenizer, max_seq_len=512, skip_bad_lines=False, cache_dir=None):
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)

    def __getitem__(self, i):
        obj = self.index[i]
        out = {}
        for side in ("chosen", "rejected"):
            ids, labels = self._encode(i, obj[side], only_last=True)
            out[f"{side}_input_ids"] = ids
            out[f"{side}_labels"] = labels
        return out
