"""The one training engine every stage script uses.

A stage script says *what* to train (data, model, loss); everything about *how* lives here, once: flags, device
and dtype, DDP / DeepSpeed, the sampler, gradient accumulation normalized by supervised tokens, clipping, AdamW,
the cosine schedule, logging (progress bar, metrics jsonl, wandb), checkpoints and exact resume.

A loss is an object with count(batch) and __call__(model, batch) -> (loss_sum, metrics) (see trainer/losses.py).
RL losses add prepare(model, batch) -> batch, called once per micro-batch without gradients (the rollouts: sampled
replies, rewards, old and reference log-probs), and inner_steps (μ): that many optimizer updates on the prepared
rollouts make one engine step (trainer/grpo.py, trainer/ppo.py).
The engine divides by the units of the whole accumulated (and all-reduced) batch, so 1 × accumulation 8 gives the
gradient of 8 × 1 — a mean of per-micro-batch means would weight short sequences more (see trl/transformers #24245).
"""
import argparse
import contextlib
import datetime
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from model.args import add_model_args, config_from_args
from model.atomic_file import remove_stale_tmp
from model.device import DTYPES, pick_device, resolve_dtype
from model.model_minimind import MiniMindForCausalLM, count_params
from model.tokenizer import DEFAULT_TOKENIZER_DIR
from model.weights import atomic_save, load_into, load_state_dict, nonfinite_tensors, weight_path
from trainer.checkpoint import (batches_done, check_resumable, load_resume, rng_state, schedule_of, set_rng_state,
                                trim_metrics)
from trainer.losses import CausalLMLoss, supervised_width


# ----------------------------------------------------------------------------------------------- flags
def resume_flag(value: str) -> int:
    return 1 if value == "auto" else int(value)


def build_parser(description: str, **defaults) -> argparse.ArgumentParser:
    """Upstream MiniMind's flag names; each stage passes its own defaults."""
    p = argparse.ArgumentParser(description=description)
    a = p.add_argument
    a("--out_dir", default="out", help="inference weights go to {out_dir}/{stage}_{hidden}[_moe].pth")
    a("--checkpoint_dir", default="checkpoints", help="resume checkpoints")
    a("--epochs", type=int, default=1)
    a("--batch_size", type=int, default=32)
    a("--learning_rate", type=float, default=5e-4)
    a("--min_lr_ratio", type=float, default=0.1, help="cosine floor as a fraction of the peak LR")
    a("--weight_decay", type=float, default=0.1, help="AdamW decay, applied to 2-D weights only")
    a("--device", default=None, help="cuda / cuda:1 / mps / cpu (default: best available)")
    a("--dtype", choices=("auto", *DTYPES), default="auto",
      help="auto: bfloat16 on CUDA (float16 if unsupported) and on CPUs with native bf16, else float32")
    a("--use_wandb", action="store_true")
    a("--wandb_project", default="MiniMind")
    a("--num_workers", type=int, default=None,
      help="DataLoader worker processes (default: 4 on CUDA, where one process tokenizing unpacked text cannot "
           "keep up with a GPU's training step; 0 elsewhere)")
    a("--accumulation_steps", type=int, default=1)
    a("--grad_clip", type=float, default=1.0)
    a("--warmup_iters", type=int, default=0, help="linear warmup, in optimizer steps")
    a("--log_interval", type=int, default=100)
    a("--save_interval", type=int, default=1000)
    a("--max_seq_len", type=int, default=512)
    a("--data_path", default=None)
    a("--tokenizer_dir", default=DEFAULT_TOKENIZER_DIR)
    a("--skip_bad_lines", action="store_true", help="skip malformed jsonl lines (counted and reported)")
    a("--from_weight", default="none", help="start from out/{NAME}_{hidden}[_moe].pth ('none': from scratch)")
    a("--from_resume", type=resume_flag, choices=(0, 1), default=0,
      help="1 (or auto): continue from checkpoints/*_resume.pth when it exists, else start fresh; so a job restarted "
           "by torchrun --max-restarts or a scheduler resumes by itself")
    a("--ddp_timeout", type=float, default=180,
      help="seconds a collective may wait for the other processes before the run stops with an error (a rank that "
           "died or froze), instead of hanging")
    a("--max_steps", type=int, default=-1, help="cap the run (and its LR schedule) at this many optimizer steps")
    a("--stop_after_steps", type=int, default=-1,
      help="checkpoint and exit after this many steps, schedule unchanged (time-sliced/preemptible jobs)")
    a("--use_compile", type=int, choices=(0, 1), default=0)
    a("--deepspeed", default=None, help="DeepSpeed JSON config (ZeRO-1/2); launch with torchrun or deepspeed")
    a("--seed", type=int, default=42)
    a("--group_by_length", type=int, choices=(0, 1), default=0,
      help="batch rows of similar length together (sorted within windows of 1,024 shuffled rows, served in "
           "shuffled runs of 64), so padded SFT rows cost less; every sample is tokenized once before the first "
           "epoch to measure it; changes the order of the data, so off by default")
    a("--save_weight", default=None, help="stage name in the output file (default: the stage)")
    add_model_args(p)
    p.set_defaults(**defaults)
    return p


# ----------------------------------------------------------------------------------------------- runtime
@dataclass
class Runtime:
    args: argparse.Namespace
    stage: str
    device: torch.device
    dtype: torch.dtype
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    save_weight: str = ""  # the name in the output file (setup: its argument, else --save_weight, else the stage)

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1

    def autocast(self):
        if self.dtype == torch.float32 or self.device.type not in ("cuda", "cpu", "mps"):
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def print(self, *a, **k):
        if self.is_main:
            print(*a, **k, flush=True)

    def weight_file(self, stage=None):
        size = config_from_args(self.args)
        return weight_path(self.args.out_dir, stage or self.save_weight, size.hidden_size,
                           size.use_moe)

    def resume_file(self):
        name = os.path.basename(self.weight_file()).removesuffix(".pth")
        return os.path.join(self.args.checkpoint_dir, f"{name}_resume.pth")

    def build_model(self, vocab_size: int, **config_overrides) -> MiniMindForCausalLM:
        """A fresh model from the size flags, or --from_weight's weights (resume state is loaded later)."""
        config = config_from_args(self.args, vocab_size=vocab_size, **config_overrides)
        # The same initial weights on every rank: DDP would broadcast rank 0's anyway, but a copy taken before
        # that (DPO's or RL's frozen reference) must match too. Rank 0's random stream is the one setup() seeded
        # (seed + 0), so single-process runs are unchanged; other ranks get their own stream back afterwards.
        stream = torch.get_rng_state()
        torch.manual_seed(self.args.seed)
        model = MiniMindForCausalLM(config)
        if self.rank:
            torch.set_rng_state(stream)
        if self.args.from_weight and self.args.from_weight != "none":
            path = self.weight_file(self.args.from_weight)
            if not os.path.isfile(path):
                raise SystemExit(f"--from_weight {self.args.from_weight}: {path} not found (train that stage first, "
                                 f"or pass --from_weight none)")
            load_into(model, load_state_dict(path), source=path)  # copy_ casts half → fp32
            self.print(f"loaded {path}")
        return model


def setup(args, stage: str, save_weight: str | None = None) -> Runtime:
    """Seeds, device, dtype and (under torchrun) the process group. save_weight names the output file
    ({out_dir}/{save_weight}_{hidden}[_moe].pth) when a stage fixes it (LoRA: lora/{lora_name})."""
    rank, local_rank, world = (int(os.environ.get(k, d)) for k, d in
                               (("RANK", 0), ("LOCAL_RANK", 0), ("WORLD_SIZE", 1)))
    device = pick_device(args.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            timeout = datetime.timedelta(seconds=args.ddp_timeout)
            backend = "nccl" if device.type == "cuda" else "gloo"
            restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            if restart != "0":
                # A group restarted by torchrun meets in the same store as the group that died, whose addresses
                # are still there: a peer that reads one first connects to a dead port. Keys of this attempt only.
                store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                                      is_master=False, timeout=timeout)
                dist.init_process_group(backend, store=dist.PrefixStore(f"restart_{restart}", store), rank=rank,
                                        world_size=world, timeout=timeout)
            else:
                dist.init_process_group(backend, timeout=timeout)
    dtype = resolve_dtype(args.dtype, device)
    if dtype == torch.float16 and device.type != "cuda":
        print(f"float16 training needs CUDA (GradScaler); using bfloat16 on {device.type}", file=sys.stderr)
        dtype = torch.bfloat16
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_everything(args.seed + rank)
    return Runtime(args, stage, device, dtype, rank, local_rank, world, save_weight or args.save_weight or stage)


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def teardown(run: Runtime):
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------- schedule
def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup, then cosine from the peak down to min_ratio·peak at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))  # steps are 0-based: the last is total-1
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(model, lr, weight_decay, device):
    # Decay matrices only: decaying norms' gains and biases pulls them toward 0 for no regularization benefit.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel per step instead of a dozen passes over every parameter (on a CPU too).
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=device.type in ("cuda", "cpu"))


# ----------------------------------------------------------------------------------------------- data order
class EpochSampler(torch.utils.data.Sampler):
    """Shuffled per (seed, epoch), ranks taking interleaved slices, able to start mid-epoch: `skip` samples of the
    order are done (all ranks together), so resume sees the exact batches an uninterrupted run would, without
    reading the skipped ones, on any number of processes."""

    def __init__(self, n, seed, epoch, rank=0, world=1, skip=0, shuffle=True, lengths=None):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        if lengths is not None:
            order = group_by_length(order, lengths, g)
        rest = order[skip:]
        rest = torch.cat([rest, order[: (-len(rest)) % world]])  # pad so every rank takes the same steps
        self.indices = rest[rank::world]

    def __iter__(self):
        return iter(self.indices.tolist())

    def __len__(self):
        return len(self.indices)


def group_by_length(order, lengths, generator, window: int = 1024, run: int = 64):
    """The shuffled order with each window of `window` rows sorted by length, cut into runs of `run` rows that are
    then shuffled: neighbours (one batch, on every rank) have similar lengths, while long and short batches still
    alternate. Depends on neither the batch size nor the number of processes, so a resumed run on another number
    of processes continues the same order."""
    lengths = torch.as_tensor(lengths)
    out = []
    for start in range(0, len(order), window):
        part = order[start:start + window]
        part = part[torch.argsort(lengths[part], descending=True, stable=True)]
        runs = part.split(run)
        out += [runs[i] for i in torch.randperm(len(runs), generator=generator).tolist()]
    return torch.cat(out) if out else order


def sample_lengths(dataset) -> list[int]:
    """Each sample's length up to its last supervised token (what the batch trim keeps): read once, before the
    first epoch."""
    lengths = []
    for i in range(len(dataset)):
        item = dataset[i]
        if not isinstance(item, dict) or "labels" not in item:
            raise SystemExit("--group_by_length needs samples with labels (pretrain / SFT data)")
        lengths.append(supervised_width(item["labels"]))
    return lengths


def batches_per_epoch(n, batch_size, world):
    return math.ceil(math.ceil(n / world) / batch_size)


# ----------------------------------------------------------------------------------------------- logging
class Logger:
    def __init__(self, run: Runtime, config: dict, resume_step: int | None):
        self.run, self.wandb = run, None
        name = os.path.basename(run.weight_file()).removesuffix(".pth")
        self.metrics_path = os.path.join(run.args.out_dir, "logs", f"{name}.jsonl")
        if not run.is_main:
            return
        os.makedirs(os.path.dirname(self.metrics_path), exist_ok=True)
        if resume_step is None and os.path.exists(self.metrics_path):
            os.remove(self.metrics_path)  # a fresh run starts a fresh curve; a resumed one continues it...
        elif resume_step is not None:
            trim_metrics(self.metrics_path, resume_step)  # ...from its checkpoint: steps after it are run again
        if run.args.use_wandb:
            # Offline unless the user has credentials: never block on an interactive login prompt.
            if not os.environ.get("WANDB_API_KEY"):
                os.environ.setdefault("WANDB_MODE", "offline")
            import wandb
            self.wandb = wandb.init(project=run.args.wandb_project, name=name, config=config, resume="allow")

    def log(self, record: dict):
        if not self.run.is_main:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb:
            self.wandb.log(record, step=record["step"])

    def close(self):
        if self.wandb:
            self.wandb.finish()


# ----------------------------------------------------------------------------------------------- the loop
@dataclass
class Position:
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches consumed in this epoch (per rank)
    step: int = 0  # optimizer steps done
    tokens: int = 0  # supervised units seen, all ranks
    elapsed: float = 0.0


def train(run: Runtime, model: torch.nn.Module, dataset, loss_fn=None, collate_fn=None, weights_fn=None) -> dict:
    """Train `model` on `dataset` with `loss_fn`; returns a summary (final loss, steps, tokens, wall time...).
    weights_fn(model) -> state dict chooses what the inference file holds (default: every weight; LoRA: adapters)."""
    args, device = run.args, run.device
    loss_fn = loss_fn or CausalLMLoss()
    if len(dataset) == 0:
        raise SystemExit(f"{args.data_path}: no usable samples")
    model.to(device)
    raw_model = model
    n_batches = batches_per_epoch(len(dataset), args.batch_size, run.world_size)
    accum = args.accumulation_steps
    if args.deepspeed:  # DeepSpeed counts micro-batches itself: keep every optimizer step a full accumulation
        n_batches -= n_batches % accum
    steps_per_epoch = math.ceil(n_batches / accum)
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps > 0:
        total_steps = min(total_steps, args.max_steps)

    optimizer = build_optimizer(model, args.learning_rate, args.weight_decay, device)
    scaler = torch.amp.GradScaler(enabled=run.dtype == torch.float16 and device.type == "cuda")
    pos = Position()
    resume_path = run.resume_file()
    schedule = schedule_of(args, run.world_size, len(dataset), total_steps)
    if run.is_main:  # temp files of a save that was killed; a live writer's are left alone
        for path in (resume_path, run.weight_file()):
            remove_stale_tmp(path)
    # DeepSpeed's checkpoint is a folder (tag) of per-rank files, ours a single file
    resuming = bool(args.from_resume) and (os.path.isdir if args.deepspeed else os.path.isfile)(resume_path)
    if args.from_resume and not resuming:
        run.print(f"--from_resume 1: no {resume_path} yet, starting fresh")
    if resuming and not args.deepspeed:
        try:
            state = load_resume(resume_path)
        except ValueError as e:
            raise SystemExit(f"{e}\n(start over with --from_resume 0, or restore the file)")
        check_resumable(state.get("schedule"), schedule, resume_path)
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        pos = Position(**state["position"])
        pos.batch_in_epoch = batches_done(state["position"], state.get("schedule"), schedule, n_batches)
        set_rng_state(state["rng"][run.rank] if run.rank < len(state["rng"]) else state["rng"][0])
        run.print(f"resumed {resume_path} at epoch {pos.epoch}, step {pos.step}")
    last_good = resume_path if resuming else None  # what a stop message may point at: a file that exists

    if args.use_compile:
        model = torch.compile(model)
    ds_engine = None
    if args.deepspeed:
        model, optimizer, ds_engine = _deepspeed_init(run, model, optimizer)
        if resuming:
            _, client = ds_engine.load_checkpoint(args.checkpoint_dir, tag=os.path.basename(resume_path))
            pos = Position(**client["position"])
            run.print(f"resumed DeepSpeed checkpoint at epoch {pos.epoch}, step {pos.step}")
    elif run.distributed:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    logger = Logger(run, vars(args), resume_step=pos.step if resuming else None)
    active = (f" ({count_params(raw_model, active_only=True) / 1e6:.2f}M active per token)"
              if getattr(raw_model.config, "use_moe", False) else "")
    run.print(f"{run.stage}: {count_params(raw_model) / 1e6:.2f}M params{active}, {len(dataset)} samples, "
              f"{total_steps} steps × {args.batch_size}×{accum}×{run.world_size} on {device} ({run.dtype})")

    def stop_message(what: str, step: int) -> str:
        saved = f"The last good checkpoint is {last_good}." if last_good else "No checkpoint was written yet."
        return f"{run.stage}: {what} at step {step}. {saved} Lower --learning_rate, raise --warmup_iters or " \
               f"use bfloat16."

    def save():
        nonlocal last_good
        # Checked on every rank (their states are equal), so all stop together; nothing non-finite is written.
        bad = nonfinite_tensors({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict()})
        if bad:
            raise FloatingPointError(stop_message(f"{len(bad)} weight/optimizer tensors became NaN or inf "
                                                  f"({', '.join(bad[:3])}), so they were not saved", pos.step))
        # Inference weights: half precision like upstream. Resume state: fp32 weights + everything else.
        if run.is_main:
            half = torch.float16 if run.dtype == torch.float16 else torch.bfloat16
            weights = weights_fn(raw_model) if weights_fn else raw_model.state_dict()
            atomic_save({k: v.detach().to(half).cpu() for k, v in weights.items()},
                        run.weight_file())
        if ds_engine is not None:
            ds_engine.save_checkpoint(args.checkpoint_dir, tag=os.path.basename(resume_path),
                                      client_state={"position": vars(pos)})
            last_good = resume_path
            return
        rngs = [rng_state()]
        if run.distributed:
            rngs = [None] * run.world_size
            dist.all_gather_object(rngs, rng_state())
        if run.is_main:
            atomic_save({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": scaler.state_dict(), "position": vars(pos), "rng": rngs, "schedule": schedule,
                         "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}},
                        resume_path)
        last_good = resume_path

    workers = args.num_workers if args.num_workers is not None else (4 if device.type == "cuda" else 0)
    if workers:  # forked workers and a tokenizer that already used its thread pool: HF tokenizers warns, then serializes
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lengths = None
    if args.group_by_length and pos.step < total_steps:
        run.print(f"{run.stage}: reading {len(dataset)} samples' lengths for --group_by_length")
        lengths = sample_lengths(dataset)
    bar = _progress(run, total_steps, pos.step)
    t0 = time.time() - pos.elapsed
    window = {"loss": 0.0, "units": 0, "t": time.time(), "steps": 0}
    last = {}
    stop = pos.step >= total_steps
    try:
        while not stop and pos.epoch < args.epochs:
            sampler = EpochSampler(len(dataset), args.seed, pos.epoch, run.rank, run.world_size, lengths=lengths,
                                   skip=pos.batch_in_epoch * args.batch_size * run.world_size)
            # its own generator: a loader draws its workers' base seed when iterated, and from the global stream
            # that would shift RL's sampling after a resume (the stream is restored before the loader starts)
            loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=sampler,
                                                 num_workers=workers, collate_fn=collate_fn,
                                                 pin_memory=device.type == "cuda", drop_last=False,
                                                 generator=torch.Generator().manual_seed(args.seed * 1000 + pos.epoch))
            it = iter(loader)
            while pos.batch_in_epoch < n_batches:
                group = []
                while len(group) < accum and pos.batch_in_epoch + len(group) < n_batches:
                    try:
                        group.append(next(it))
                    except ValueError as e:  # a row found bad only when read (e.g. a prompt too long): file:line
                        raise SystemExit(str(e)) from None
                prepare = getattr(loss_fn, "prepare", None)
                if prepare is None:
                    trim = getattr(loss_fn, "trim", None)
                    if trim is not None:
                        group = [trim(b) for b in group]
                    # counted on the host batches: one device→host sync fewer a step (the loss read below is the other)
                    units = torch.stack([loss_fn.count(b) for b in group]).sum().float()
                    group = [_to(b, device) for b in group]
                else:  # RL: each micro-batch of prompts becomes rollouts of the current policy (and their rewards)
                    # under the update's autocast, so the old log-probs come from the same forward as the update's
                    with torch.no_grad(), run.autocast():
                        group = [prepare(raw_model, _to(b, device)) for b in group]
                    units = torch.stack([loss_fn.count(b) for b in group]).sum().float()
                if run.distributed:
                    units = units.to(device)
                    dist.all_reduce(units)
                lr = lr_at(pos.step, total_steps, args.learning_rate, args.warmup_iters, args.min_lr_ratio)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                # RL's inner updates (loss_fn.inner_steps = μ, GRPO's num_iterations): μ optimizer updates on the
                # same rollouts, one engine step (schedule, logging, checkpoints count rollout batches)
                inner_steps = getattr(loss_fn, "inner_steps", 1)
                step_loss, extras = 0.0, {}
                for _inner in range(inner_steps):
                    loss_total = torch.zeros((), device=device)
                    for i, batch in enumerate(group):
                        sync = i == len(group) - 1
                        ctx = model.no_sync() if run.distributed and not sync and ds_engine is None else \
                            contextlib.nullcontext()
                        with ctx:
                            with run.autocast():
                                loss_sum, metrics = loss_fn(model, batch)
                            aux = metrics.pop("aux_loss", None)
                            # ×world: DDP/DeepSpeed average gradients over ranks, we want a sum over the global units.
                            loss = loss_sum * run.world_size / units.clamp(min=1)
                            if aux is not None:
                                loss = loss + aux / len(group)
                            if ds_engine is not None:
                                ds_engine.backward(loss * accum)  # DeepSpeed divides by its accumulation steps
                                ds_engine.step()
                            else:
                                scaler.scale(loss).backward()
                        loss_total += loss_sum.detach()
                        for k, v in metrics.items():
                            extras[k] = extras.get(k, 0.0) + float(v) / (len(group) * inner_steps)
                    if run.distributed:
                        dist.all_reduce(loss_total)
                    inner_loss = float(loss_total / units.clamp(min=1))
                    if not math.isfinite(inner_loss):
                        raise FloatingPointError(stop_message(f"the loss became {inner_loss} (lr {lr:.2e})",
                                                              pos.step + 1))
                    step_loss += inner_loss / inner_steps
                    if ds_engine is None:
                        scaler.unscale_(optimizer)
                        if args.grad_clip > 0:  # after backward: DDP has already all-reduced the gradients
                            norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), args.grad_clip)
                            if not scaler.is_enabled() and not torch.isfinite(norm):  # fp16's scaler skips such steps
                                raise FloatingPointError(stop_message(f"the gradient norm became {float(norm)}",
                                                                      pos.step + 1))
                        scaler.step(optimizer)
                        scaler.update()
                        optimizer.zero_grad(set_to_none=True)
                pos.batch_in_epoch += len(group)
                pos.step += 1
                pos.tokens += int(units)
                pos.elapsed = time.time() - t0
                window["loss"] += step_loss
                window["steps"] += 1
                window["units"] += int(units)
                last = {"loss": step_loss, **extras}
                bar.update(1)
                if pos.step % args.log_interval == 0 or pos.step == total_steps:
                    dt = max(time.time() - window["t"], 1e-9)
                    record = {"step": pos.step, "epoch": pos.epoch, "loss": window["loss"] / window["steps"],
                              "lr": lr, "tokens": pos.tokens, "tok_per_s": window["units"] / dt,
                              "elapsed_s": pos.elapsed, **extras}
                    logger.log(record)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{lr:.1e}", tok_s=f"{record['tok_per_s']:.0f}")
                    window = {"loss": 0.0, "units": 0, "t": time.time(), "steps": 0}
                if pos.step >= total_steps:
                    stop = True
                    break
                if pos.step % args.save_interval == 0:
                    save()
                if args.stop_after_steps > 0 and pos.step >= args.stop_after_steps:
                    save()
                    run.print(f"stopped after {pos.step} steps (--stop_after_steps); resume with --from_resume 1")
                    return {"stopped": True, "step": pos.step, **last}
            else:
                pos.epoch += 1
                pos.batch_in_epoch = 0
    finally:
        bar.close()
        logger.close()
    save()
    summary = {"stage": run.stage, "steps": pos.step, "tokens": pos.tokens, "wall_time_s": pos.elapsed,
               "tok_per_s": pos.tokens / max(pos.elapsed, 1e-9), "final_loss": last.get("loss"),
               "weights": run.weight_file(), "metrics": logger.metrics_path,
               "params": count_params(raw_model), "n_bad_lines": getattr(dataset, "n_bad", 0), **last}
    if summary["n_bad_lines"]:
        run.print(f"skipped {summary['n_bad_lines']} bad lines in {args.data_path} (--skip_bad_lines)")
    loss_txt = "n/a (no step left to run)" if summary["final_loss"] is None else f"{summary['final_loss']:.4f}"
    run.print(f"{run.stage} done: {pos.step} steps, {pos.tokens} tokens in {pos.elapsed:.0f}s, "
              f"final loss {loss_txt} → {run.weight_file()}")
    return summary


def _to(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _progress(run, total, initial):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=run.stage, disable=not run.is_main, dynamic_ncols=True,
                mininterval=1.0)


def _deepspeed_init(run, model, optimizer):
    import deepspeed
    args = run.args
    with open(args.deepspeed) as f:
        config = json.load(f)
    # Our flags are the single source of truth; the JSON contributes the ZeRO stage and DeepSpeed-only options.
    config.update(train_micro_batch_size_per_gpu=args.batch_size,
                  gradient_accumulation_steps=args.accumulation_steps,
                  gradient_clipping=args.grad_clip)
    config["bf16"] = {"enabled": run.dtype == torch.bfloat16}
    config["fp16"] = {"enabled": run.dtype == torch.float16}
    config.pop("train_batch_size", None)
    engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    return engine, optimizer, engine
