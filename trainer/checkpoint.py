"""The resume checkpoint's contents besides weights: RNG streams, what defines the schedule and the data order,
and the checks that a resumed run continues the run that wrote it."""
import json
import os
import random

import numpy as np
import torch

from model.atomic_file import atomic_write_bytes
from model.weights import read_checkpoint


def rng_state():
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # plain values: loadable with weights_only=True
    state = {"python": random.getstate(), "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_resume(path):
    """The resume checkpoint, checksums verified (a damaged file is a ValueError naming it)."""
    state = read_checkpoint(path)
    if not isinstance(state, dict) or not {"model", "optimizer", "position"} <= state.keys():
        raise ValueError(f"{path}: not a resume checkpoint (no model / optimizer / position)")
    return state


def schedule_of(args, world_size: int, n_samples: int, total_steps: int) -> dict:
    """What the LR schedule and the order of the data depend on. The global batch (batch × accumulation × ranks)
    is what matters, so a run may resume on another number of processes if it keeps the global batch."""
    data = args.data_path
    return {"global_batch": args.batch_size * args.accumulation_steps * world_size,
            "batch_size": args.batch_size, "accumulation_steps": args.accumulation_steps, "world_size": world_size,
            "max_seq_len": args.max_seq_len, "total_steps": total_steps, "seed": args.seed,
            "n_samples": n_samples, "data_path": os.path.basename(data),
            "data_bytes": os.path.getsize(data) if os.path.isfile(data) else None,
            "group_by_length": args.group_by_length}


CHECKED = {"global_batch": "--batch_size × --accumulation_steps × processes", "max_seq_len": "--max_seq_len",
           "total_steps": "--epochs / --max_steps (with the batch, they fix the LR schedule)", "seed": "--seed",
           "n_samples": "the data file's usable samples", "data_bytes": "the data file's size",
           "group_by_length": "--group_by_length"}
ABSENT_MEANS = {"group_by_length": 0}  # what a checkpoint written before the key existed ran with


def check_resumable(saved: dict | None, now: dict, path: str):
    """SystemExit naming every difference that would silently change the run being resumed."""
    if saved is None:  # written before the schedule was recorded: nothing to compare
        return
    saved = {**ABSENT_MEANS, **saved}
    diffs = [f"  {CHECKED[k]}: {saved.get(k)} in the checkpoint, {now[k]} now" for k in CHECKED
             if saved.get(k) != now[k]]
    if diffs:
        raise SystemExit(f"{path} continues a different run:\n" + "\n".join(diffs) +
                         "\nResume with the flags and data it was written with (another number of processes is "
                         "fine when batch × accumulation × processes stays the same), or start over with "
                         "--from_resume 0.")


def batches_done(saved_position: dict, saved: dict | None, now: dict, n_batches: int) -> int:
    """The resumed epoch's micro-batches done per rank, in this run's batch size and number of processes. Ranks
    take interleaved slices of one shuffled order, so what a run has consumed is always a prefix of that order:
    micro-batches × batch × ranks samples."""
    done = saved_position["batch_in_epoch"]
    if saved is None or (saved["batch_size"], saved["world_size"]) == (now["batch_size"], now["world_size"]):
        return done
    samples = done * saved["batch_size"] * saved["world_size"]
    if samples >= now["n_samples"]:
        return n_batches  # the epoch was finished (its last batch padded)
    per_batch = now["batch_size"] * now["world_size"]
    if samples % per_batch:
        raise SystemExit(f"cannot resume mid-epoch at sample {samples} with batch {now['batch_size']} × "
                         f"{now['world_size']} processes (not a whole number of batches)")
    return samples // per_batch


def trim_metrics(path: str, step: int):
    """Drop metric records after `step`: a resumed run replays those steps, and must log each step once."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by the crash
    if len(kept) != len(lines):
        atomic_write_bytes(path, lambda f: f.write("".join(kept).encode("utf-8")))
