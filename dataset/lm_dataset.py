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

from dataset.bounded_tokenize import (PACK_BATCH_CHARS, PACK_CHUNK_CHARS, _splits_cleanly, encode_prefix,
                                      split_for_tokenizing)
from dataset.chat_tokens import IGNORE_INDEX, chat_ids_and_labels
from dataset.tool_messages import normalize_messages, require_tool_tokens, uses_tools
from dataset.jsonl_index import (JsonlIndex, PROGRESS_MIN_BYTES, cache_dir_for, cache_lock, file_signature,
                                 validator_name)
from dataset.validate import validate_dpo, validate_pretrain, validate_sft
from model.atomic_file import atomic_write_bytes, atomic_write_json


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

    @property
    def n_flagged(self):
        """Lines kept but odd (e.g. a chat ending with a user turn); warned about on open."""
        return self.index.n_flagged

    def __len__(self):
        return len(self.index)


# ------------------------------------------------------------------- pretrain

class PretrainDataset(_JsonlDataset):
    """Plain-text pretraining samples.

    Unpacked (default): one line -> ``bos + tokens(text) + eos``, truncated to
    ``max_seq_len`` (a long document loses its tail, eos included, as
    upstream), right-padded with the pad id; labels are the ids with padding
    set to -100. Only a bounded prefix of a long document is tokenized
    (``encode_prefix``), with the same resulting ids.

    ``packing=True``: the whole file is tokenized once into an on-disk token
    stream (``bos+doc+eos`` per document, memmapped; long documents are
    tokenized in pieces, ``split_for_tokenizing``), and sample ``i`` is the
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
        # version 2: long documents are tokenized in pieces (split_for_tokenizing)
        key = {"version": 2, **file_signature(self.data_path), "tokenizer": tok_hash,
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
        # Long documents are tokenized in pieces (memory stays bounded by a
        # batch, not by the longest document) if this tokenizer allows it.
        can_split = _splits_cleanly(self.tokenizer)
        added = sorted(self.tokenizer.get_added_vocab())

        def write(f):
            nonlocal n_tokens
            # Pieces of documents; first/last: does the piece open/close its document?
            batch, first, last = [], [], []
            n_chars = 0

            def flush():
                nonlocal n_tokens, n_chars
                enc = self.tokenizer(batch, add_special_tokens=False)["input_ids"]
                flat = []
                for ids, opens, closes in zip(enc, first, last):
                    if opens:
                        flat.append(self.bos_id)
                    flat.extend(ids)
                    if closes:
                        flat.append(self.eos_id)
                arr = np.asarray(flat, dtype=np.int64)
                if arr.size and arr.max() > max_id:  # guard the narrowing cast
                    raise ValueError(f"token id {arr.max()} does not fit {np.dtype(dtype).name}")
                f.write(arr.astype(dtype).tobytes())
                n_tokens += arr.size
                if bar is not None:
                    bar.update(sum(last))
                batch.clear()
                first.clear()
                last.clear()
                n_chars = 0

            for obj in self.index:  # file order, sequential reads
                text = obj["text"]
                pieces = (split_for_tokenizing(text, added, PACK_CHUNK_CHARS)
                          if can_split and len(text) > PACK_CHUNK_CHARS else [text])
                for k, piece in enumerate(pieces):
                    batch.append(piece)
                    first.append(k == 0)
                    last.append(k == len(pieces) - 1)
                    n_chars += len(piece)
                    if len(batch) >= batch_docs or n_chars >= PACK_BATCH_CHARS:
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
            try:
                # L body tokens are enough: bos + body is cut to L anyway.
                body = encode_prefix(self.tokenizer, text, L)
            except Exception as e:
                # Name the line: a failure deep in an epoch is otherwise
                # impossible to trace back to the data.
                raise ValueError(f"{self.index.where(i)}: {type(e).__name__}: {e}") from e
            ids = [self.bos_id] + body + [self.eos_id]
            input_ids, labels = _pad(ids, ids, L, self.pad_id)
        return {"input_ids": input_ids, "labels": labels}


class _ChatDataset(_JsonlDataset):
    def __init__(self, data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("SFT/DPO datasets need a fast tokenizer (offset mapping)")
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no eos token to close assistant replies")
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)

    def _encode(self, i, messages, only_last):
        try:
            messages = normalize_messages(messages)
            if uses_tools(messages):
                require_tool_tokens(self.tokenizer, "rows with tools")
            ids, labels = chat_ids_and_labels(self.tokenizer, messages, only_last=only_last,
                                              max_tokens=self.max_seq_len)
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
