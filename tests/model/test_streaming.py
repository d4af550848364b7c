"""The UTF-8-safe incremental detokenizer every streaming front end (chat CLI, server, web demo) shares."""
from types import SimpleNamespace

import torch

from model.streaming import IncrementalDecoder, TextStream
from model.tokenizer import load_tokenizer


def test_utf8_decoder_holds_back_a_split_character():
    tok = load_tokenizer()  # the shipped tokenizer: rare characters fall back to byte tokens
    text = "你好😀龘!"
    ids = tok.encode(text, add_special_tokens=False)
    assert any("\ufffd" in tok.decode([i]) for i in ids), "the test needs a character split across tokens"
    decoder = IncrementalDecoder(tok)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    # a byte no later token can complete goes out as U+FFFD rather than holding back the text after it
    lone = tok.encode("😀", add_special_tokens=False)[:1] + tok.encode("a", add_special_tokens=False)
    assert "".join(decoder.push(i) for i in lone) == "\ufffda"


class Scripted(torch.nn.Module):
    """A stand-in model that says a fixed token sequence, whatever it is asked."""

    def __init__(self, script, vocab_size):
        super().__init__()
        self.script, self.vocab_size, self.config = iter(script), vocab_size, SimpleNamespace(num_hidden_layers=1)

    def forward(self, input_ids, **_):
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab_size)
        logits[:, -1, next(self.script)] = 1.0
        return SimpleNamespace(logits=logits)


def test_text_stream_never_splits_a_character_and_stops_at_the_end_of_turn():
    tok = load_tokenizer()
    text = "你好😀龘!"
    ids = tok.encode(text, add_special_tokens=False)
    stream = TextStream(Scripted(ids + [tok.eos_token_id, 5, 6], len(tok)), tok, torch.tensor([[1]]),
                        max_new_tokens=50, temperature=0)
    pieces = list(stream)
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    assert (stream.n_tokens, stream.finish_reason) == (len(ids), "stop")  # the end-of-turn token is not counted
    cut = TextStream(Scripted(ids, len(tok)), tok, torch.tensor([[1]]), max_new_tokens=3, temperature=0)
    assert "".join(cut) == "你好" + "\ufffd" and (cut.n_tokens, cut.finish_reason) == (3, "length")
