"""Token ids → text pieces that never end in half a character.

A byte-level BPE tokenizer splits a rare character (an emoji, an uncommon hanzi) into several byte tokens. Decoding
the first of them alone gives U+FFFD, the replacement character; printed or sent to a client, that mark stays on
screen for good. So bytes are held back until they complete a character.
"""
from collections.abc import Iterator

from .generate import stream_generate


class IncrementalDecoder:
    def __init__(self, tokenizer):
        self.tokenizer, self.pending = tokenizer, []

    def push(self, token_id: int) -> str:
        """The text this token completes ('' while a character is still unfinished)."""
        self.pending.append(int(token_id))
        text = self.tokenizer.decode(self.pending, skip_special_tokens=True)
        # An unfinished character can only sit at the end; U+FFFD anywhere else is a byte the model got wrong,
        # which no later token can repair, so it goes out as it is.
        if text.endswith("\ufffd"):
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        """Whatever is still held back, at the end of the stream."""
        text = self.tokenizer.decode(self.pending, skip_special_tokens=True) if self.pending else ""
        self.pending = []
        return text


class TextStream:
    """One reply as it is generated. Iterating yields one text piece per token ('' while a character is unfinished,
    so a consumer can stop between any two tokens); afterwards n_tokens and finish_reason are set ('stop' when the
    model ended its turn, 'length' when it ran into max_new_tokens)."""

    def __init__(self, model, tokenizer, input_ids, **sampling):
        self.model, self.tokenizer, self.input_ids, self.sampling = model, tokenizer, input_ids, sampling
        self.n_tokens, self.finish_reason = 0, "length"

    def __iter__(self) -> Iterator[str]:
        decoder = IncrementalDecoder(self.tokenizer)
        eos = self.tokenizer.eos_token_id
        for token in stream_generate(self.model, self.input_ids, eos_token_id=eos,
                                     pad_token_id=self.tokenizer.pad_token_id or 0, **self.sampling):
            if int(token) == eos:
                self.finish_reason = "stop"
                break
            self.n_tokens += 1
            yield decoder.push(token)
        if tail := decoder.flush():
            yield tail
