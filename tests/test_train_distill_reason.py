import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from train_distill_reason import TagWeightedLoss, tag_token_ids
from trainer.losses import CausalLMLoss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(vocab=40):
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              num_key_value_heads=2, vocab_size=vocab))


def test_shipped_tokenizer_has_each_tag_as_one_token():
    tok = load_tokenizer()
    ids = tag_token_ids(tok)
    assert len(ids) == 4
    assert [tok.convert_ids_to_tokens(i) for i in ids] == sorted(["<think>", "</think>", "<answer>", "</answer>"],
                                                                  key=tok.convert_tokens_to_ids)


def test_tag_targets_weigh_tag_weight_times_and_weight_one_is_plain_sft():
    model = tiny()
    ids = torch.tensor([[5, 6, 3, 8, 9, 4, 12, 13]])
    labels = ids.clone()
    labels[0, :2] = -100
    batch = {"input_ids": ids, "labels": labels}
    plain_sum, _ = CausalLMLoss()(model, batch)
    one = TagWeightedLoss([3, 4], 1.0)
    assert_close(one(model, batch)[0], plain_sum)
    assert one.count(batch) == CausalLMLoss().count(batch) == 6

    ten = TagWeightedLoss([3, 4], 10.0)
    assert ten.count(batch) == 6 + 2 * 9  # targets 3 and 4 are supervised tags
    ce = F.cross_entropy(model(ids).logits[0, :-1], ids[0, 1:], reduction="none").detach()
    w = torch.tensor([0, 10, 1, 1, 10, 1, 1.0])  # target 6 (position 0→1) is a prompt token: weight 0
    assert_close(ten(model, batch)[0].detach(), (ce * w).sum())


def test_script_trains_on_traces(tmp_path, tiny_tokenizer_dir):
    data = tmp_path / "reason.jsonl"
    data.write_text('{"conversations": [{"role": "user", "content": "3加4等于几？"}, {"role": "assistant", '
                    '"content": "<think>\\n3+4=7\\n</think>\\n<answer>\\n7\\n</answer>"}]}\n' * 8, encoding="utf-8")
    save_native(tiny(600), str(tmp_path / "dpo_32.pth"))
    r = subprocess.run([sys.executable, "train_distill_reason.py", "--data_path", str(data), "--out_dir", str(tmp_path),
                        "--checkpoint_dir", str(tmp_path / "ck"), "--tokenizer_dir", tiny_tokenizer_dir,
                        "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
                        "--num_key_value_heads", "2", "--batch_size", "4", "--epochs", "2", "--max_seq_len", "48",
                        "--learning_rate", "1e-3", "--log_interval", "1"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "reason_32.pth").is_file()
