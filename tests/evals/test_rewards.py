"""Rewards for RL (evals/rewards.py): each function on hand-made replies, the flag parser, the weighted sum and a
reward model folder."""
import pytest

from evals.rewards import (RewardModel, RewardSet, answer_reward, choice_reward, fact_reward, format_reward,
                           length_reward, parse_reward_flags, repetition_reward, steps_reward)

TRACE = "<think>\n2盒，每盒3个：2×3=6。\n送出1个：6-1=5。\n</think>\n<answer>\n5\n</answer>"


def test_answer_reward_is_exact():
    assert answer_reward("", TRACE, "5") == 1.0
    assert answer_reward("", TRACE.replace("\n5\n", "\n15\n"), "5") == 0.0  # containment would accept 15
    assert answer_reward("", "<answer>\n March 9 \n</answer>", "March 9") == 1.0
    assert answer_reward("", "5", "5") == 0.0  # no <answer> block


def test_format_and_steps_rewards():
    assert format_reward("", TRACE, "") == 1.0
    assert format_reward("", "<answer>\n5\n</answer>", "") == 0.5
    assert format_reward("", TRACE + " extra", "") == 0.0
    assert format_reward("", "<think>\nx\n</think>\n5", "") == 0.0
    assert steps_reward("", TRACE, "") == 1.0
    assert steps_reward("", "2+5=10. 3 × 4 = 12.", "") == 0.5
    assert steps_reward("", "no equations", "") == 0.0
    assert steps_reward("", "7 / 0 = 1", "") == 0.0  # division by zero is wrong, not an error


def test_trace_reward_needs_the_reference_steps():
    from evals.rewards import trace_reward
    assert trace_reward("", TRACE, "5", reference_reply=TRACE) == 1.0
    half = TRACE.replace("6-1=5", "6-2=4")  # right arithmetic, wrong number copied from the question
    assert trace_reward("", half, "5", reference_reply=TRACE) == 0.5
    assert trace_reward("", "2 x 3 = 6", "5", reference_reply=TRACE) == 0.5  # x and × are the same operator
    assert trace_reward("", TRACE, "5", reference_reply="") == 0.0  # no worked solution: no credit


def test_fact_choice_length_repetition():
    assert fact_reward("", "Lin was born in Hangzhou. He studied in Xi'an.", "Hangzhou") == 1.0
    assert fact_reward("", "Lin studied in Xi'an. He was born in Hangzhou.", "Hangzhou") == 0.0
    assert choice_reward("", "B", "B") == 1.0 and choice_reward("", "<answer>\nc\n</answer>", "C") == 1.0
    assert choice_reward("", "A", "B") == 0.0 and choice_reward("", "", "B") == 0.0
    assert length_reward("", "x", "", finished=False) == -1.0 and length_reward("", "x", "", finished=True) == 0.0
    assert repetition_reward("", "abcdefgh", "") == 0.0
    assert repetition_reward("", "abababababab", "") < -0.5


def test_parse_reward_flags():
    assert parse_reward_flags("answer,format", "1,0.1") == [("answer", 1.0), ("format", 0.1)]
    assert parse_reward_flags("answer", None) == [("answer", 1.0)]
    for funcs, weights, message in [("answr", None, "unknown reward 'answr'"), ("", None, "names no reward"),
                                    ("answer,format", "1", "1 values for 2"), ("answer", "x", "comma-separated"),
                                    ("answer", "inf", "finite")]:
        with pytest.raises(ValueError, match=message):
            parse_reward_flags(funcs, weights)


def test_reward_set_weights_and_parts():
    rs = RewardSet([("answer", 1.0), ("format", 0.1)])
    totals, parts = rs(["q", "q"], [TRACE, "<answer>\n4\n</answer>"], ["5", "5"], finished=[True, True],
                       lengths=[20, 5])
    assert totals == pytest.approx([1.1, 0.05])
    assert parts == {"answer": [1.0, 0.0], "format": [1.0, 0.5]}


def test_reward_model_folder(tmp_path):
    """A tiny randomly initialised sequence-classification model saved here: its logit 0 joins the reward."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from model.tokenizer import DEFAULT_TOKENIZER_DIR, load_tokenizer
    tok = load_tokenizer(DEFAULT_TOKENIZER_DIR)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "rm")
    rm = RewardModel(str(tmp_path / "rm"), tok)
    scores = rm(["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"] * 2, ["hello", "a different reply"])
    assert len(scores) == 2 and scores[0] != scores[1]
    rs = RewardSet([("length", 1.0)], rm, reward_model_weight=2.0)
    totals, parts = rs(["p", "p"], ["hello", "a different reply"], ["", ""], finished=[True, False])
    direct = rm(["p", "p"], ["hello", "a different reply"])
    assert totals == pytest.approx([2 * direct[0], -1 + 2 * direct[1]], abs=1e-5)
    with pytest.raises(ValueError, match="--reward_model_path"):
        RewardModel(str(tmp_path / "missing"), tok)
