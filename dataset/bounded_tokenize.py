"""Tokenizing only the part of a long text a sample can use, and cutting long documents for packing."""
import re
import weakref


# ------------------------------------------------------- bounded tokenization
#
# A sample only uses the first max_seq_len tokens of its text, but tokenizing
# a whole 50 MB line costs GBs of RAM (Python lists of ids and offsets) and
# ~45 s, only to throw all but a few hundred tokens away. So a long text is
# cut before tokenizing, at a bound that provably keeps the tokens we use:
#
# * Which tokens a cut can change. A fast tokenizer works in stages: added /
#   special tokens are matched literally; the normalizer (none in ours) maps
#   characters locally; the pre-tokenizer splits the text into pre-tokens
#   (ours: single CJK characters, single digits, then GPT-2's regex: words,
#   punctuation runs, whitespace runs; it looks at most one character ahead);
#   BPE then merges inside each pre-token independently. So ``text[:c]``
#   tokenizes exactly like ``text`` up to the pre-token P that straddles the
#   cut; only tokens from P on can differ (BPE may re-merge all of P). We keep
#   a token only if it starts before ``c - CUT_MARGIN``: unless P is longer
#   than CUT_MARGIN characters, that token lies before P, hence is exact, and
#   so are all tokens before it.
# * Where to cut. A token covers at most T characters, T = the longest token
#   of the vocabulary (byte-level BPE: a token is at most len(token) bytes and
#   a character is at least one byte; added tokens: their length). So the
#   first n tokens of any text lie in its first n*T characters, and
#   ``c = n*T + CUT_MARGIN`` leaves them the margin. The keep-rule above is
#   still checked on every cut (``_enough``), and the cut doubled if it fails
#   (a normalizer that deletes characters, an <unk> swallowing a long run), so
#   T only decides speed; correctness rests on the one assumption that no
#   pre-token at the cut is longer than CUT_MARGIN characters (a 1000+ char
#   run of letters, of punctuation or of whitespace).
# * Chats (SFT/DPO): only the rendered chat's first max_seq_len tokens matter,
#   so message contents are cut and later messages dropped before rendering
#   (``_truncate_chat``) such that the rendered text keeps its first c
#   characters; that is checked against the full rendering (characters only,
#   no tokens), with the exact path as the fallback.
# Texts shorter than the bound take the unchanged path (whole text), so every
# ordinary sample is bit-identical to before.

CUT_MARGIN = 1024
_MAX_TOKEN_CHARS = weakref.WeakKeyDictionary()


def max_token_chars(tokenizer):
    """Most characters one token of ``tokenizer`` can cover (see above). Cached per tokenizer."""
    try:
        return _MAX_TOKEN_CHARS[tokenizer]
    except (KeyError, TypeError):
        pass
    t = max([len(tok) for tok in tokenizer.get_vocab()] + [1])
    try:
        _MAX_TOKEN_CHARS[tokenizer] = t
    except TypeError:  # not weak-referenceable: just recompute next time
        pass
    return t


def prefix_char_bound(tokenizer, n_tokens):
    """Characters of a text that are enough to tokenize its first ``n_tokens`` tokens exactly."""
    return n_tokens * max_token_chars(tokenizer) + CUT_MARGIN


def _enough(starts, n_tokens, cut):
    """Do the first n_tokens tokens of a text cut after ``cut`` characters all
    start before ``cut - CUT_MARGIN`` (so they are the uncut text's tokens)?"""
    return len(starts) >= n_tokens and starts[n_tokens - 1] < cut - CUT_MARGIN


def encode_prefix(tokenizer, text, n_tokens):
    """``tokenizer(text, add_special_tokens=False)["input_ids"]`` if ``text`` is
    short; else its first ``n_tokens`` ids (at least that many exist), computed
    from a bounded prefix of ``text`` so time and memory do not grow with it."""
    cut = prefix_char_bound(tokenizer, n_tokens)
    while cut < len(text):
        enc = tokenizer(text[:cut], add_special_tokens=False, return_offsets_mapping=True)
        if _enough([a for a, _ in enc["offset_mapping"]], n_tokens, cut):
            return enc["input_ids"][:n_tokens]
        cut *= 2
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# Packing keeps every token of a document, so a long one is tokenized in
# pieces of about PACK_CHUNK_CHARS characters (a batch holds at most
# PACK_BATCH_CHARS), cut where the pre-tokenizer splits anyway: right before a
# space that follows a non-space (GPT-2 and Llama-3/Qwen regexes start a new
# pre-token there), or between a letter and a punctuation mark / symbol
# ("字。", "word,"); never inside an added token. Such a cut gives exactly the
# tokens of the whole document. Only a run of PACK_CHUNK_CHARS + CUT_MARGIN
# characters with no such place is cut hard, which may change the one or two
# tokens at the cut, never the text (the ids still decode to it).
PACK_CHUNK_CHARS = 1 << 16
PACK_BATCH_CHARS = 1 << 20
_SAFE_CUT = re.compile(r"\S(?= )|[^\W\d_](?=[^\w\s])")


def _added_token_at(text, q, added):
    """Start of an added-token occurrence that spans position ``q`` (q inside it), else -1."""
    for a in added:
        if len(a) > 1:
            j = text.find(a, max(0, q - len(a) + 1), q + len(a) - 1)
            if j != -1:
                return j
    return -1


def split_for_tokenizing(text, added=(), chunk=PACK_CHUNK_CHARS, window=CUT_MARGIN):
    """``text`` as consecutive pieces (``"".join(pieces) == text``) of about
    ``chunk`` characters, cut at pre-token boundaries where possible (above)."""
    pieces, start = [], 0
    while len(text) - start > chunk + window:
        target = start + chunk
        cut, pos = -1, target
        while cut < 0:
            m = _SAFE_CUT.search(text, pos, target + window)
            if m is None:
                break
            if _added_token_at(text, m.end(), added) < 0:
                cut = m.end()
            pos = m.end()
        if cut < 0:  # no safe place: a hard cut, but not through an added token
            j = _added_token_at(text, target, added)
            cut = j if j > start else target
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _splits_cleanly(tokenizer):
    """Does tokenizing "a b" equal tokenizing "a" then " b"? False for tokenizers that
    add a prefix space / "▁" to every input, where cutting a text would change it."""
    enc = tokenizer(["ab cd", "ab", " cd"], add_special_tokens=False)["input_ids"]
    return enc[0] == enc[1] + enc[2]
