"""The shared training engine (trainer/engine.py), driven in-process on a tiny float32 model.

Exact resume, token-normalized gradient accumulation, the LR schedule, NaN handling, checkpoint files,
--from_weight, and the stage scripts' data errors. Multi-process (DDP/DeepSpeed) and CLI end-to-end runs live in
test_distributed.py.
"""
import glob
import json
import math
import os
import re
import sys

import pytest
import torch

from dataset.lm_dataset import PretrainDataset, SFTDataset
from model.args import config_from_args
from model.model_minimind import MiniMindForCausalLM
from model.tokenizer import load_tokenizer
from trainer import engine
from trainer.losses import CausalLMLoss

TINY = ["--hidden_size", "32", "--num_hidden_layers", "2", "--num_attention_heads", "4",
        "--num_key_value_heads", "2", "--dtype", "float32", "--device", "cpu"]


# ----------------------------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def one_torch_thread():
    # A 32-wide model gains nothing from intra-op threads, and on a shared 2-core box OpenMP workers spinning
    # against other processes made each step ~40x slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_pretrain(path, n, seed=0):
    """n short {"text"} lines of varied length (so samples carry different numbers of tokens)."""
    import random
    rng = random.Random(seed)
    words = ["Alice", "Bob", "reads", "buys", "green", "tea", "books", "every", "day", "北京", "上海", "苹果", "咖啡"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(3 + (i * 7) % 11)) + f" {i}."
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return str(path)


def write_sft(path, replies):
    """One single-turn chat per reply: the assistant spans (and so the supervised tokens) differ in length."""
    with open(path, "w", encoding="utf-8") as f:
        for i, reply in enumerate(replies):
            conv = [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": reply}]
            f.write(json.dumps({"conversations": conv}, ensure_ascii=False) + "\n")
    return str(path)


def make_args(tmp_path, tok_dir, data_path, *extra, out="out", **defaults):
    parser = engine.build_parser("test", **defaults)
    argv = [*TINY, "--tokenizer_dir", tok_dir, "--data_path", str(data_path), "--out_dir", str(tmp_path / out),
            "--checkpoint_dir", str(tmp_path / out / "ckpt"), "--max_seq_len", "48", *map(str, extra)]
    return parser.parse_args(argv)


def run_stage(args, stage="pretrain", loss_fn=None):
    """What a stage script does, minus the CLI: returns (runtime, trained model, summary)."""
    run = engine.setup(args, stage=stage)
    tok = load_tokenizer(args.tokenizer_dir)
    cls = PretrainDataset if stage == "pretrain" else SFTDataset
    data = cls(args.data_path, tok, args.max_seq_len)
    model = run.build_model(vocab_size=len(tok))
    summary = engine.train(run, model, data, loss_fn or CausalLMLoss())
    engine.teardown(run)
    return run, model, summary


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def sgd_instead_of_adamw(monkeypatch):
    """Plain SGD: the update IS the gradient (AdamW's first step is ~lr·sign(g), blind to gradient scale)."""
    monkeypatch.setattr(engine, "build_optimizer",
                        lambda model, lr, weight_decay, device: torch.optim.SGD(model.parameters(), lr=lr))


def well_conditioned_adamw(monkeypatch):
    """The real AdamW with eps 1: its first step is lr·g/(|g|+eps), which for gradients near the default eps (1e-8)
    swings by far more than rounding when the gradient moves by rounding (summation order differs between CPUs);
    with eps 1 the update is a smooth function of the gradient, so equal gradients give equal updates."""
    build = engine.build_optimizer

    def build_with_eps(model, lr, weight_decay, device):
        optimizer = build(model, lr, weight_decay, device)
        for group in optimizer.param_groups:
            group["eps"] = 1.0
        return optimizer
    monkeypatch.setattr(engine, "build_optimizer", build_with_eps)


# ----------------------------------------------------------------------------------------------- 1. resume
@pytest.mark.parametrize("grouped", [0, 1], ids=["shuffled", "grouped-by-length"])
@pytest.mark.parametrize("stop_at", [3, 4], ids=["at-epoch-boundary", "mid-epoch"])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, tiny_tokenizer_dir, stop_at, grouped):
    # 10 samples, batch 2 → 5 micro-batches per epoch; accumulation 2 → 3 optimizer steps per epoch (the last one
    # a single micro-batch), 3 epochs capped at 8 steps: the run crosses two epoch boundaries and the stop lands
    # exactly on one (3) or mid-epoch (4).
    data = write_pretrain(tmp_path / "pre.jsonl", 10)
    flags = ["--batch_size", 2, "--accumulation_steps", 2, "--epochs", 3, "--max_steps", 8, "--log_interval", 1,
             "--save_interval", 1000, "--learning_rate", 3e-3, "--warmup_iters", 2, "--group_by_length", grouped]

    straight = make_args(tmp_path, tiny_tokenizer_dir, data, *flags, out="straight")
    run_a, _, sum_a = run_stage(straight)
    assert sum_a["steps"] == 8

    first = make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--stop_after_steps", stop_at, out="split")
    _, _, sum_b1 = run_stage(first)
    assert sum_b1["stopped"] and sum_b1["step"] == stop_at
    run_b, _, _ = run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--from_resume", 1, out="split"))
    state = engine.load_resume(run_b.resume_file())
    assert state["position"]["step"] == 8 and state["position"]["epoch"] == 2

    curve_a = read_metrics(tmp_path / "straight" / "logs" / "pretrain_32.jsonl")
    curve_b = read_metrics(tmp_path / "split" / "logs" / "pretrain_32.jsonl")  # both runs append to one curve
    assert [r["step"] for r in curve_a] == list(range(1, 9))
    assert [r["step"] for r in curve_b] == list(range(1, 9))
    assert [r["epoch"] for r in curve_a] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert [r["epoch"] for r in curve_b] == [r["epoch"] for r in curve_a]
    assert [r["tokens"] for r in curve_b] == [r["tokens"] for r in curve_a]  # same samples, same order
    if grouped:  # 10 rows fit one window: each epoch serves them longest first
        per_step = [b["tokens"] - a["tokens"] for a, b in zip([{"tokens": 0}] + curve_a, curve_a)]
        for epoch in range(3):
            steps = [n for n, r in zip(per_step, curve_a) if r["epoch"] == epoch]
            assert steps == sorted(steps, reverse=True), (epoch, steps)
    torch.testing.assert_close(torch.tensor([r["loss"] for r in curve_b]),
                               torch.tensor([r["loss"] for r in curve_a]), rtol=1e-6, atol=1e-6)
    assert [r["lr"] for r in curve_b] == pytest.approx([r["lr"] for r in curve_a], rel=1e-12)

    final_a = engine.load_resume(run_a.resume_file())["model"]
    final_b = engine.load_resume(run_b.resume_file())["model"]
    assert final_a.keys() == final_b.keys()
    for k in final_a:
        torch.testing.assert_close(final_b[k], final_a[k], rtol=1e-6, atol=1e-7, msg=k)


def test_group_by_length_keeps_every_row_and_sorts_each_run():
    lengths = torch.randint(1, 500, (3000,), generator=torch.Generator().manual_seed(0))
    order = engine.EpochSampler(3000, seed=1, epoch=0, lengths=lengths).indices
    assert sorted(order.tolist()) == list(range(3000))  # a permutation: no row dropped or repeated
    served = lengths[order]
    ascents = int((served[1:] > served[:-1]).sum())
    assert ascents <= 3000 // 64 + 2  # longest first within each run of 64: lengths rise only where a run starts
    spread = lambda o: float(torch.stack([b.max() - b.min() for b in lengths[o].split(16)]).float().mean())  # noqa
    shuffled = engine.EpochSampler(3000, seed=1, epoch=0).indices
    assert spread(order) < spread(shuffled) / 10  # batches of 16 pad to far less
    firsts = [int(lengths[order[i]]) for i in range(0, 1024, 64)]
    assert firsts != sorted(firsts, reverse=True)  # the runs themselves are shuffled: long and short alternate
    # the same order whatever the number of processes: ranks take interleaved slices of it
    ranks = [engine.EpochSampler(3000, seed=1, epoch=0, rank=r, world=2, lengths=lengths).indices for r in (0, 1)]
    assert torch.equal(torch.stack(ranks, 1).flatten(), order)


def test_group_by_length_needs_labelled_samples():
    with pytest.raises(SystemExit, match="--group_by_length needs samples with labels"):
        engine.sample_lengths([{"prompt_ids": torch.tensor([1, 2])}])


def test_resume_of_a_finished_run_is_a_no_op(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 4)
    flags = ["--batch_size", 2, "--max_steps", 2, "--log_interval", 1]
    run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags))
    run, _, summary = run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--from_resume", 1))
    assert summary["steps"] == 2 and summary["final_loss"] is None
    assert len(read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")) == 2


class FakeDeepSpeed:
    """Stands in for deepspeed.initialize's engine (the real one is exercised in test_distributed.py): records what
    the engine asks of it and keeps its checkpoint, like DeepSpeed, as a folder named by the tag."""

    def __init__(self, model, optimizer):
        self.module, self.optimizer, self.calls = model, optimizer, []

    def __call__(self, *a, **k):
        return self.module(*a, **k)

    def backward(self, loss):
        self.calls.append("backward")
        loss.backward()

    def step(self):
        self.calls.append("step")

    def save_checkpoint(self, save_dir, tag, client_state):
        os.makedirs(os.path.join(save_dir, tag), exist_ok=True)
        with open(os.path.join(save_dir, tag, "client.json"), "w") as f:
            json.dump(client_state, f)

    def load_checkpoint(self, load_dir, tag):
        self.calls.append(f"load {tag}")
        with open(os.path.join(load_dir, tag, "client.json")) as f:
            return os.path.join(load_dir, tag), json.load(f)


def test_deepspeed_resume_finds_its_checkpoint_folder(tmp_path, tiny_tokenizer_dir, monkeypatch):
    fakes = []

    def fake_init(run, model, optimizer):
        fakes.append(FakeDeepSpeed(model, optimizer))
        return fakes[-1], optimizer, fakes[-1]

    monkeypatch.setattr(engine, "_deepspeed_init", fake_init)
    data = write_pretrain(tmp_path / "pre.jsonl", 8)
    flags = ["--deepspeed", tmp_path / "ds.json", "--batch_size", 2, "--accumulation_steps", 2, "--epochs", 2,
             "--log_interval", 1]
    _, _, first = run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--stop_after_steps", 2))
    assert first["stopped"] and fakes[0].calls == ["backward", "step"] * 4  # DeepSpeed steps every micro-batch
    run, _, summary = run_stage(make_args(tmp_path, tiny_tokenizer_dir, data, *flags, "--from_resume", 1))
    assert os.path.isdir(run.resume_file())
    assert fakes[1].calls[0] == f"load {os.path.basename(run.resume_file())}"
    assert fakes[1].calls[1:] == ["backward", "step"] * 4 and summary["steps"] == 4
    assert [r["step"] for r in read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")] == [1, 2, 3, 4]


# ----------------------------------------------------------------------------------------------- 2. accumulation
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_accumulation_is_normalized_by_supervised_tokens(tmp_path, tiny_tokenizer_dir, monkeypatch, optimizer):
    # Exactly 4 samples: both configurations see the same 4 in one optimizer step, whatever the shuffle.
    replies = ["ok", "the answer is four", "a b c d e f g h i j k l m n o p", "北京 上海 杭州 成都 西安 广州 南京"]
    data = write_sft(tmp_path / "sft.jsonl", replies)
    tok = load_tokenizer(tiny_tokenizer_dir)
    ds = SFTDataset(data, tok, 48)
    counts = [int(CausalLMLoss().count({k: v[None] for k, v in ds[i].items()})) for i in range(4)]
    assert len(set(counts)) == 4, counts  # genuinely different weights per sample

    if optimizer == "adamw":
        well_conditioned_adamw(monkeypatch)
        extra = ["--learning_rate", 1.0]  # with eps 1 the update is ≈ g/(1+|g|): a token-weighting error shows
    else:
        sgd_instead_of_adamw(monkeypatch)
        extra = ["--learning_rate", 1.0, "--grad_clip", 0]  # params move by exactly -grad
    params = {}
    for bs, accum in ((4, 1), (1, 4)):
        args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", bs, "--accumulation_steps", accum,
                         "--epochs", 1, *extra, out=f"b{bs}x{accum}")
        _, model, summary = run_stage(args, stage="full_sft")
        assert summary["steps"] == 1 and summary["tokens"] == sum(counts)
        params[bs] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    init = engine.setup(args, "full_sft").build_model(vocab_size=len(tok)).state_dict()
    assert any(not torch.equal(init[k], params[4][k]) for k in init)  # the step did move the weights
    for k in params[4]:
        torch.testing.assert_close(params[1][k], params[4][k], rtol=0, atol=1e-5, msg=k)


def test_trim_drops_only_padding_no_loss_term_reads(tmp_path, tiny_tokenizer_dir):
    replies = ["ok", "the answer is four", "北京 上海 杭州"]
    tok = load_tokenizer(tiny_tokenizer_dir)
    ds = SFTDataset(write_sft(tmp_path / "sft.jsonl", replies), tok, 96)
    batch = {k: torch.stack([ds[i][k] for i in range(3)]) for k in ds[0]}
    loss_fn = CausalLMLoss()
    trimmed = loss_fn.trim(batch)
    last = int((batch["labels"] != -100).any(0).nonzero()[-1])
    width = trimmed["input_ids"].shape[1]
    assert last < width < 96 and width % 16 == 0  # the padding went, every supervised target stayed
    assert torch.equal(trimmed["labels"], batch["labels"][:, :width])
    assert int(loss_fn.count(trimmed)) == int(loss_fn.count(batch))
    args = make_args(tmp_path, tiny_tokenizer_dir, str(tmp_path / "sft.jsonl"))
    model = engine.setup(args, "full_sft").build_model(vocab_size=len(tok))
    grads = []
    for b in (batch, trimmed):
        model.zero_grad()
        loss, _ = loss_fn(model, b)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=0, atol=1e-5)
    for g_full, g_trim in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g_full, g_trim, rtol=0, atol=1e-6)
    full = {"input_ids": batch["input_ids"][:, :16], "labels": batch["input_ids"][:, :16]}
    assert loss_fn.trim(full) is full  # nothing to cut: the same batch back


# ----------------------------------------------------------------------------------------------- 3. schedule
def test_lr_schedule_exact_values():
    peak, lo = 1e-3, 0.1
    lr = lambda s: engine.lr_at(s, total=11, peak=peak, warmup=2, min_ratio=lo)  # noqa: E731
    assert lr(0) == pytest.approx(peak / 2)  # linear warmup
    assert lr(1) == pytest.approx(peak)
    assert lr(2) == pytest.approx(peak)  # cosine starts at the peak
    assert lr(6) == pytest.approx(peak * (lo + (1 - lo) * 0.5))  # halfway (steps 2..10)
    assert lr(4) == pytest.approx(peak * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi / 4))))
    assert lr(10) == pytest.approx(lo * peak)  # the last step (0-based) is the floor
    assert lr(25) == pytest.approx(lo * peak)  # and it stays there
    values = [lr(s) for s in range(2, 11)]
    assert all(a > b for a, b in zip(values, values[1:]))
    # no warmup; and degenerate one-step runs
    assert engine.lr_at(0, 5, peak, 0, lo) == pytest.approx(peak)
    assert engine.lr_at(4, 5, peak, 0, lo) == pytest.approx(lo * peak)
    assert engine.lr_at(0, 1, peak, 0, lo) == pytest.approx(peak)


def test_engine_logs_the_scheduled_lr(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 6)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 1, "--max_steps", 5, "--warmup_iters", 1,
                     "--log_interval", 1, "--learning_rate", 2e-3, "--min_lr_ratio", 0.25)
    run_stage(args)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")]
    assert lrs == pytest.approx([engine.lr_at(s, 5, 2e-3, 1, 0.25) for s in range(5)])
    assert lrs[0] == pytest.approx(2e-3) and lrs[-1] == pytest.approx(0.25 * 2e-3)


# ----------------------------------------------------------------------------------------------- 4. NaN
class NanAtCall(CausalLMLoss):
    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, model, batch):
        self.calls += 1
        loss_sum, metrics = super().__call__(model, batch)
        return (loss_sum * float("nan") if self.calls == self.at else loss_sum), metrics


def test_nan_loss_stops_with_the_last_good_checkpoint(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 8)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 1, "--max_steps", 6, "--save_interval", 1,
                     "--log_interval", 1)
    run = engine.setup(args, "pretrain")
    resume = run.resume_file()
    with pytest.raises(FloatingPointError, match=re.escape(resume)) as err:
        run_stage(args, loss_fn=NanAtCall(3))
    assert "nan" in str(err.value) and "step 3" in str(err.value)

    state = torch.load(resume, map_location="cpu", weights_only=True)  # still intact
    assert state["position"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    run.build_model(vocab_size=len(load_tokenizer(tiny_tokenizer_dir))).load_state_dict(state["model"])
    assert not glob.glob(str(tmp_path / "**" / "*.tmp*"), recursive=True)

    # and the run continues from it
    resumed = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 1, "--max_steps", 6,
                        "--save_interval", 1, "--log_interval", 1, "--from_resume", 1)
    _, _, summary = run_stage(resumed)
    assert summary["steps"] == 6 and math.isfinite(summary["final_loss"])
    assert [r["step"] for r in read_metrics(tmp_path / "out" / "logs" / "pretrain_32.jsonl")] == list(range(1, 7))


# ----------------------------------------------------------------------------------------------- 5. files
def test_checkpoint_files(tmp_path, tiny_tokenizer_dir):
    data = write_pretrain(tmp_path / "pre.jsonl", 6)
    args = make_args(tmp_path, tiny_tokenizer_dir, data, "--batch_size", 2, "--max_steps", 3, "--save_interval", 1)
    run, model, _ = run_stage(args)

    weights = tmp_path / "out" / "pretrain_32.pth"
    assert run.weight_file() == str(weights)
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    assert sd.keys() == model.state_dict().keys()
    assert {v.dtype for v in sd.values()} <= {torch.bfloat16, torch.float16}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(sd[k].float(), v.to(sd[k].dtype).float(), rtol=0, atol=0, msg=k)

    resume = tmp_path / "out" / "ckpt" / "pretrain_32_resume.pth"
    assert run.resume_file() == str(resume)
    state = torch.load(resume, map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "position", "rng", "scaler", "args"} <= state.keys()
    assert {v.dtype for v in state["model"].values()} == {torch.float32}
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v), k
    assert state["position"]["step"] == 3 and state["position"]["tokens"] > 0
    assert state["optimizer"]["state"]  # AdamW moments, not just hyper-parameters
    assert len(state["rng"]) == 1 and {"python", "numpy", "torch"} <= state["rng"][0].keys()
    engine.set_rng_state(state["rng"][0])  # round-trips through weights_only loading
    assert state["args"]["hidden_size"] == 32

    leftovers = glob.glob(str(tmp_path / "**" / "*.tmp*"), recursive=True)
    assert not leftovers


def test_atomic_save_keeps_the_previous_file_on_a_failed_write(tmp_path, monkeypatch):
    path = str(tmp_path / "ck" / "x.pth")
    engine.atomic_save({"a": torch.ones(3)}, path)
    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.truncate(10)  # a half-written file...
        raise OSError("disk full")  # ...then the failure

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        engine.atomic_save({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))
    assert os.listdir(tmp_path / "ck") == ["x.pth"]


# ----------------------------------------------------------------------------------------------- 6. --from_weight
def _script_main(monkeypatch, module, argv):
    import importlib
    mod = importlib.import_module(module)
    monkeypatch.setattr(sys, "argv", [f"{module}.py", *map(str, argv)])
    return mod.main()


def test_full_sft_starts_from_the_pretrain_weights(tmp_path, tiny_tokenizer_dir, monkeypatch):
    tok = load_tokenizer(tiny_tokenizer_dir)
    data = write_sft(tmp_path / "sft.jsonl", ["one", "two three"])
    common = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", data, "--out_dir", tmp_path / "out",
              "--checkpoint_dir", tmp_path / "ckpt", "--max_seq_len", 32]
    # "pretrain" weights: a model from another seed, saved like the engine saves them (bf16)
    torch.manual_seed(1234)
    pre_args = engine.build_parser("x").parse_args([*map(str, TINY)])
    pre = MiniMindForCausalLM(config_from_args(pre_args, vocab_size=len(tok)))
    engine.atomic_save({k: v.to(torch.bfloat16) for k, v in pre.state_dict().items()},
                       str(tmp_path / "out" / "pretrain_32.pth"))

    captured = {}

    def fake_train(run, model, dataset, loss_fn=None, collate_fn=None):
        captured["run"], captured["sd"] = run, {k: v.clone() for k, v in model.state_dict().items()}
        return {}

    monkeypatch.setattr(engine, "train", fake_train)
    _script_main(monkeypatch, "train_full_sft", common)  # default --from_weight pretrain
    assert captured["run"].args.from_weight == "pretrain"
    loaded = captured["sd"]
    assert loaded.keys() == pre.state_dict().keys()
    for k, v in pre.state_dict().items():
        torch.testing.assert_close(loaded[k], v.to(torch.bfloat16).float(), rtol=0, atol=0, msg=k)

    _script_main(monkeypatch, "train_full_sft", [*common, "--from_weight", "none"])
    assert not torch.equal(captured["sd"]["model.embed_tokens.weight"], loaded["model.embed_tokens.weight"])

    with pytest.raises(SystemExit, match="not found"):
        _script_main(monkeypatch, "train_full_sft", [*common, "--from_weight", "missing_stage"])


# ----------------------------------------------------------------------------------------------- 7. data errors
@pytest.mark.parametrize("script", ["train_pretrain", "train_full_sft"])
def test_bad_data_line_exits_naming_file_and_line(tmp_path, tiny_tokenizer_dir, monkeypatch, script):
    path = tmp_path / "bad.jsonl"
    good = ({"text": "hello world"} if script == "train_pretrain" else
            {"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + '{"text": broken\n', encoding="utf-8")
    argv = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", path, "--out_dir", tmp_path / "out",
            "--checkpoint_dir", tmp_path / "ckpt", "--max_seq_len", 32, "--from_weight", "none"]
    # SystemExit(message) is what makes the CLI print one line and exit 1 instead of a traceback
    with pytest.raises(SystemExit) as e:
        _script_main(monkeypatch, script, argv)
    assert isinstance(e.value.code, str) and f"{path}:3" in e.value.code


def test_skip_bad_lines_trains_and_reports_the_count(tmp_path, tiny_tokenizer_dir, monkeypatch, capsys):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps({"text": f"hello world {i}"}) for i in range(4)]
    lines[1] = '{"text": broken'
    lines.insert(3, json.dumps({"txt": "wrong field"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = [*TINY, "--tokenizer_dir", tiny_tokenizer_dir, "--data_path", path, "--out_dir", tmp_path / "out",
            "--checkpoint_dir", tmp_path / "ckpt", "--max_seq_len", 32, "--batch_size", 2, "--skip_bad_lines"]
    with pytest.warns(UserWarning, match="skipped 2 bad line"):
        _script_main(monkeypatch, "train_pretrain", argv)
    out = capsys.readouterr().out
    assert "skipped 2 bad lines" in out and str(path) in out
    assert (tmp_path / "out" / "pretrain_32.pth").is_file()


@pytest.mark.parametrize("script,hint", [("train_pretrain", "pretrain.jsonl"), ("train_full_sft", "sft.jsonl")])
def test_missing_data_file_says_where_to_get_it(tmp_path, monkeypatch, script, hint):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SystemExit) as e:
        _script_main(monkeypatch, script, ["--data_path", missing])
    msg = str(e.value.code)
    assert f"{missing} not found" in msg
    assert "minimind_dataset" in msg and "dataset.world" in msg and hint in msg
