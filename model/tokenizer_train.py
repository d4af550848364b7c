"""MiniMind's byte-level BPE tokenizer: how it pre-tokenizes, its reserved ids and chat template, and training it.

Token id layout (other modules rely on it):
    0 <|endoftext|>   pad / unk          (special)
    1 <|im_start|>    bos, ChatML turn start (special)
    2 <|im_end|>      eos, ChatML turn end   (special)
    3..6 <think> </think> <answer> </answer>  (added but NOT special, so
        they survive ``skip_special_tokens=True`` and show up in decoded
        reasoning traces, while still being single tokens)
    7..10 <tool_call> </tool_call> <tool_response> </tool_response>  (likewise)

The result is a ``tokenizer.json`` + ``tokenizer_config.json`` pair that
``transformers.AutoTokenizer.from_pretrained(save_dir)`` loads. The CLI is train_tokenizer.py.
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
ADDED_TOKENS = TAG_TOKENS + TOOL_TOKENS  # single tokens that decode() keeps (not special)

# Characters that get a pre-token of their own while the merges are learned (split_cjk): CJK ideographs (all
# planes), CJK radicals/symbols/punctuation, kana, bopomofo, hangul and the full-width forms (，。！？（） etc.).
# Without this, byte-level BPE on templated Chinese text happily merges whole phrases into one token (e.g.
# "是恒通电子的员工" as a single id), so the model can no longer compose the facts from their characters.
# Exposed so tests can reuse it.
CJK_CHAR_CLASS = (
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f"
    "\uff00-\uffef\U00020000-\U0003134f]"
)

# MiniMind2-style ChatML. No default system prompt: a system turn is rendered only when the caller passes one (as
# the first message) or passes tools=. Content is rendered verbatim so <think>/<answer> tags inside it stay intact, and
# every turn renders the same whatever follows it (prefix-stable), which the SFT loss masks rely on.
#   tools=[...]            → appended to the system turn as one signature line per tool,
#                            "- lookup_person(name: string, attribute: birth_date|…): One fact about a person."
#                            (a small model reads ~20 tokens per tool instead of a JSON schema's ~70; the full
#                            schema still checks every call, toolcall/registry.py)
#   assistant tool_calls   → <tool_call>{"name": …, "arguments": {…}}</tool_call>, one per line after the content
#   role tool              → <tool_response>…</tool_response>; consecutive tool messages share one user turn
#   reasoning_content      → <think>\n…\n</think>\n before the content (an empty string: thinking switched off)
#   enable_thinking (or upstream's open_thinking) with add_generation_prompt: True opens <think>, False writes an
#   empty think block; unset leaves the choice to the model.
TOOLS_HEADER = '# Tools\nCall a tool as <tool_call>{"name": <tool>, "arguments": {…}}</tool_call>:'
CHAT_TEMPLATE = (
    "{%- set tool_list = tools if tools is defined and tools else [] %}"
    "{%- if tool_list %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' and messages[0]['content'] %}"
    "{{- messages[0]['content'] ~ '\\n\\n' }}"
    "{%- endif %}"
    "{{- '" + TOOLS_HEADER.replace("\n", "\\n") + "' }}"
    "{%- for tool in tool_list %}"
    "{%- set fn = tool['function'] if tool['function'] is defined else tool %}"
    "{%- set params = fn['parameters'] if fn['parameters'] is defined and fn['parameters'] else {} %}"
    "{%- set props = params['properties'] if params['properties'] is defined and params['properties'] else {} %}"
    "{%- set required = params['required'] if params['required'] is defined and params['required'] else [] %}"
    "{{- '\\n- ' ~ fn['name'] ~ '(' }}"
    "{%- for key, spec in props.items() %}"
    "{{- (', ' if not loop.first else '') ~ key ~ ('' if key in required else '?') ~ ': ' }}"
    "{{- spec['enum'] | join('|') if spec['enum'] is defined else (spec['type'] if spec['type'] is defined else 'any') }}"
    "{%- endfor %}"
    "{{- ')' }}"
    "{%- if fn['description'] is defined and fn['description'] %}{{- ': ' ~ fn['description'] }}{%- endif %}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- set role = message['role'] %}"
    "{%- if role not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{- raise_exception('Unsupported chat role: ' ~ role) }}"
    "{%- endif %}"
    "{%- set content = message['content'] if message['content'] is string else '' %}"
    "{%- if role == 'system' and loop.first and tool_list %}"
    "{%- elif role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}"
    "{{- '<|im_start|>user\\n' }}"
    "{%- else %}"
    "{{- '\\n' }}"
    "{%- endif %}"
    "{{- '<tool_response>' ~ content ~ '</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' ~ role ~ '\\n' }}"
    "{%- if role == 'assistant' and message['reasoning_content'] is defined and message['reasoning_content'] is string %}"
    "{{- '<think>\\n' ~ message['reasoning_content'].strip('\\n') ~ '\\n</think>\\n' }}"
    "{%- endif %}"
    "{{- content }}"
    "{%- if role == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] %}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set fn = call['function'] if call['function'] is defined else call %}"
    "{%- if content or not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>{\"name\": ' ~ (fn['name'] | tojson) ~ ', \"arguments\": ' }}"
    "{{- fn['arguments'] if fn['arguments'] is string else (fn['arguments'] | tojson) }}"
    "{{- '}</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- set thinking = enable_thinking if enable_thinking is defined "
    "else (open_thinking if open_thinking is defined else none) %}"
    "{%- if thinking is true %}{{- '<think>\\n' }}"
    "{%- elif thinking is false %}{{- '<think>\\n\\n</think>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def runtime_pre_tokenizer():
    """How the trained tokenizer cuts text before BPE: one pre-token per digit, then GPT-2's regex (words with their
    leading space, runs of punctuation, whitespace), then bytes. Exactly what llama.cpp implements as its "refact"
    pre-tokenizer, so a GGUF export tokenizes like transformers (model/gguf_export.py).

    One token per digit: numbers then tokenize the same way wherever they appear, which makes arithmetic and copying
    numbers easier to learn. Byte-level last, so every string (emoji, rare scripts) is representable with no <unk>.
    No prefix space: decode(encode(x)) must equal x exactly."""
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def build_tokenizer(split_cjk=True):
    """An untrained byte-level BPE tokenizer with the pre-tokenization its merges are learned under.

    split_cjk isolates every CJK character while training only: no merge can then join two characters (or a
    character and its neighbours), so the trained merges cut Chinese into characters also under the runtime
    pre-tokenizer, which llama.cpp can reproduce (train_tokenizer swaps it in before saving)."""
    tok = Tokenizer(models.BPE())
    steps = [pre_tokenizers.Split(Regex(CJK_CHAR_CLASS), behavior="isolated")] if split_cjk else []
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps + [runtime_pre_tokenizer()])
    tok.decoder = decoders.ByteLevel()
    # Register the reserved tokens before training so occurrences of them in
    # the corpus are cut out whole instead of being learned as merges.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return tok


def _batches(texts, size=1000):
    """Lists of texts: the trainer takes them a batch at a time across the Rust boundary."""
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def tokenizer_config():
    """The tokenizer_config.json transformers needs next to tokenizer.json."""
    return {
        # In transformers 5 this name maps to the generic tokenizers-backed
        # class, which uses tokenizer.json as-is (model-specific classes such
        # as LlamaTokenizer would rebuild their own pre-tokenizer).
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": IM_START,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": ENDOFTEXT,
        "model_max_length": 32768,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def _complete_chars(tok: Tokenizer, chars) -> Tokenizer:
    """``tok`` with merges appended (after every learned one) until each of ``chars`` is a single token.

    A character the corpus never showed stays split into its UTF-8 bytes, and two characters that share their leading
    bytes (二 and 五 are E4 BA 8C and E4 BA 94) then differ in one byte token only: a small model copying 星期二 from a
    tool result writes 星期五. Each appended merge joins two pieces inside one character, so it cannot change how text
    whose characters were single tokens already tokenizes, nor join bytes across characters (a character's pieces
    start with a leading byte, and a boundary pair starts with a continuation byte). A character is made whole on its
    own; a learned merge across a character boundary (byte-level BPE learns a few, e.g. "{" with the first bytes of
    "…") still outranks the appended ones in that context."""
    data = json.loads(tok.to_str())
    vocab, merges = data["model"]["vocab"], data["model"]["merges"]
    for char in sorted(set(chars)):
        while len(ids := tok.encode(char).ids) > 1:
            first, second = tok.id_to_token(ids[0]), tok.id_to_token(ids[1])
            vocab.setdefault(first + second, len(vocab))
            merges.append([first, second])
            tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    return tok


def train_tokenizer(texts, save_dir, vocab_size=6400, split_cjk=True, min_frequency=2, show_progress=True,
                    required_chars=""):
    """Train on ``texts`` (any iterable of strings, e.g. dataset.jsonl_files.iter_texts(path)) and write the tokenizer
    files into ``save_dir``. ``required_chars``: characters that must be single tokens even if the corpus lacks them
    (merges appended after the learned ones, beyond vocab_size). Returns ``save_dir``."""
    reserved = SPECIAL_TOKENS + ADDED_TOKENS
    if vocab_size < 256 + len(reserved):
        raise ValueError(f"vocab_size must be at least {256 + len(reserved)} (bytes + reserved tokens)")
    tok = build_tokenizer(split_cjk)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        # Listing the reserved tokens here pins them to ids 0..10, in order.
        special_tokens=reserved,
        # All 256 byte symbols, even ones the corpus lacks, so nothing is unknown.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tok.train_from_iterator(_batches(texts), trainer=trainer)

    # The trainer registers everything in special_tokens as *special*; turn the
    # reasoning and tool tags back into normal added tokens so decode() keeps them.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    tok.pre_tokenizer = runtime_pre_tokenizer()
    if required_chars:
        tok = _complete_chars(tok, required_chars)
    for i, t in enumerate(reserved):
        assert tok.token_to_id(t) == i, f"{t} landed on id {tok.token_to_id(t)}, expected {i}"

    os.makedirs(save_dir, exist_ok=True)
    tok.save(os.path.join(save_dir, "tokenizer.json"))
    with open(os.path.join(save_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(), f, ensure_ascii=False, indent=2)

    n_vocab = tok.get_vocab_size()
    n_merges = len(json.loads(tok.to_str())["model"]["merges"])
    print(f"tokenizer saved to {save_dir}: vocab {n_vocab} (requested {vocab_size}), {n_merges} merges")
    if n_vocab < vocab_size:
        print(f"warning: corpus ran out of merges (min_frequency={min_frequency}); "
              f"vocab is {vocab_size - n_vocab} short of the requested size")
    return save_dir
