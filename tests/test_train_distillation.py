import math
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from model.hf_convert import save_native
from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from train_distillation import distill_loss_sum

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V = 11


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(2, 6, V, generator=g), torch.randn(2, 6, V, generator=g)
    labels = torch.randint(0, V, (2, 6), generator=g)
    labels[0, :3] = -100  # a prompt: its positions are not scored
    return s, t, labels


def test_hand_computed_kl_and_ce_on_supervised_positions_only():
    s, t, labels = batch()
    T, alpha = 2.0, 0.3
    loss, ce, kl = distill_loss_sum(s, t, labels, alpha, T)
    ce_ref = kl_ref = 0.0
    for b in range(2):
        for i in range(5):  # logits at i predict labels[i + 1]
            y = int(labels[b, i + 1])
            if y == -100:
                continue
            ce_ref -= math.log(s[b, i].softmax(-1)[y])
            p, q = (t[b, i] / T).softmax(-1), (s[b, i] / T).softmax(-1)
            kl_ref += float((p * (p / q).log()).sum())
    assert_close(ce, torch.tensor(ce_ref), rtol=1e-5, atol=1e-5)
    assert_close(kl, torch.tensor(kl_ref), rtol=1e-5, atol=1e-5)
    assert_close(loss, alpha * ce + (1 - alpha) * T * T * kl)


def test_alpha_one_is_plain_cross_entropy_and_identical_teacher_adds_nothing():
    s, t, labels = batch(1)
    ce = F.cross_entropy(s[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100, reduction="sum")
    assert_close(distill_loss_sum(s, t, labels, 1.0, 1.5)[0], ce)
    _, _, kl = distill_loss_sum(s, s.clone(), labels, 0.5, 1.5)
    assert abs(float(kl)) < 1e-5


def test_unsupervised_positions_do_not_matter():
    s, t, labels = batch(2)
    s2, t2 = s.clone(), t.clone()
    s2[0, :2] += 5.0  # positions 0-1 predict labels 1-2, which are -100
    t2[0, :2] -= 5.0
    assert_close(distill_loss_sum(s, t, labels, 0.5, 2.0)[0], distill_loss_sum(s2, t2, labels, 0.5, 2.0)[0])


def test_script_distills_a_student_from_a_larger_teacher(tmp_path, tiny_tokenizer_dir):
    data = tmp_path / "sft.jsonl"
    data.write_text('{"conversations": [{"role": "user", "content": "你好"}, '
                    '{"role": "assistant", "content": "你好，我是小明。"}]}\n' * 8, encoding="utf-8")
    torch.manual_seed(0)
    for hidden, layers in ((32, 2), (64, 2)):  # student start point and teacher
        model = MiniMindForCausalLM(MiniMindConfig(hidden_size=hidden, num_hidden_layers=layers,
                                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=600))
        save_native(model, str(tmp_path / f"full_sft_{hidden}.pth"))
    r = subprocess.run([sys.executable, "train_distillation.py", "--data_path", str(data), "--out_dir", str(tmp_path),
                        "--checkpoint_dir", str(tmp_path / "ck"), "--tokenizer_dir", tiny_tokenizer_dir,
                        "--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
                        "--num_key_value_heads", "2", "--teacher_hidden_size", "64", "--teacher_num_hidden_layers",
                        "2", "--teacher_num_attention_heads", "4", "--teacher_num_key_value_heads", "2",
                        "--batch_size", "4", "--epochs", "1", "--max_seq_len", "32", "--learning_rate", "1e-3",
                        "--log_interval", "1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "full_dist_32.pth").is_file()
    assert "teacher" in r.stdout and "full_sft_64.pth" in r.stdout

    bad = subprocess.run([sys.executable, "train_distillation.py", "--data_path", str(data), "--out_dir",
                          str(tmp_path), "--tokenizer_dir", tiny_tokenizer_dir, "--hidden_size", "32",
                          "--num_hidden_layers", "2", "--teacher_hidden_size", "48"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "teacher: no checkpoint at" in bad.stderr and "Traceback" not in bad.stderr
