"""The measurements of the --all stages: answer quality, preference accuracy, reasoning accuracy, expert load."""
import json

import pytest
import torch
from torch.testing import assert_close

import evals.reasoning
from dataset.chat_tokens import chat_ids_and_labels
from evals.answers import check_answer
from evals.expert_load import expert_load
from evals.preference import preference_accuracy
from evals.qa import answer_quality
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from trainer.losses import sequence_logps


def tiny(vocab, seed=0, **kw):
    torch.manual_seed(seed)
    return MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, vocab_size=vocab, **kw)).eval()


def test_answer_quality_counts_wrong_and_rambling():
    recs = [{"answer": "济南"}, {"answer": "Jinan"}, {"answer": "Xi'an"}, {"answer": "1979"}]
    replies = ["张伟出生在济南。", "He was born in Jinan. He works in Xi'an.", "He was born in Wuhan.",
               "嗯……让我想想……我不确定。也许1980？"]
    q = answer_quality(recs, replies, check_answer)
    assert q == {"wrong": 0.5, "rambling": 0.5, "wrong_or_rambling": 0.75}


def test_preference_accuracy_is_the_sign_of_the_implicit_reward_margin(tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    policy, ref = tiny(len(tok), 1), tiny(len(tok), 2)
    user = {"role": "user", "content": "小明住在哪里？"}
    pairs = [{"chosen": [user, {"role": "assistant", "content": a}], "rejected": [user, {"role": "assistant",
                                                                                          "content": b}]}
             for a, b in (("北京", "上海"), ("杭州", "成都的南边"), ("西安", "西安"))]
    res = preference_accuracy(policy, ref, tok, pairs, batch_size=2)  # 2 + 1: batching and padding exercised
    margins = []
    for p in pairs:
        lp = {}
        for side in ("chosen", "rejected"):
            ids, labels = chat_ids_and_labels(tok, p[side], only_last=True)
            ids, labels = torch.as_tensor(ids)[None], torch.as_tensor(labels)[None]
            with torch.no_grad():
                lp[side] = sequence_logps(policy(ids).logits, labels) - sequence_logps(ref(ids).logits, labels)
        margins.append(float(lp["chosen"] - lp["rejected"]))
    assert res["n"] == 3 and abs(margins[2]) < 1e-5  # identical replies: no preference
    assert res["pref_acc"] == sum(m > 0 for m in margins) / 3
    assert_close(torch.tensor(res["mean_margin"]), torch.tensor(sum(margins) / 3), atol=1e-4, rtol=1e-4)


def test_reasoning_accuracy_compares_the_answer_exactly_and_checks_the_format(monkeypatch):
    replies = ["<think>\n3+4=7\n</think>\n<answer>\n7\n</answer>",  # right, well formed
               "<think>\n1+1=17\n</think>\n<answer>\n17\n</answer>",  # "7" is inside "17": still wrong
               "<answer>\n7\n</answer>",  # right, but no trace
               "7"]  # no answer block at all
    monkeypatch.setattr(evals.reasoning, "chat_replies", lambda *a, **k: replies)
    recs = [{"conversations": [{"role": "user", "content": "3加4等于几？"}], "answer": "7"}] * 4
    res = evals.reasoning.reasoning_accuracy(None, None, recs)
    assert res["acc"] == 0.5 and res["well_formed"] == 0.5


def test_expert_load_counts_every_routed_slot(tmp_path, tiny_tokenizer_dir):
    tok = load_tokenizer(tiny_tokenizer_dir)
    model = tiny(len(tok), use_moe=True, n_routed_experts=4, num_experts_per_tok=2)
    texts = ["小明住在北京。", "Alice likes green tea every day."]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    res = expert_load(model, tok, str(path))
    n_tokens = sum(1 + len(tok.encode(t, add_special_tokens=False)) for t in texts)
    assert len(res["tokens_per_expert"]) == 2  # one row per MoE layer
    assert all(sum(row) == 2 * n_tokens for row in res["tokens_per_expert"])  # top-2: two slots per token
    assert all(1.0 <= x <= 4.0 for x in res["max_over_mean"])
    with pytest.raises(ValueError, match="no MoE layers"):
        expert_load(tiny(len(tok)), tok, str(path))
