"""Reading, writing and naming native checkpoints (`out/{stage}_{hidden}[_moe].pth`, MiniMind2's state-dict names)."""
import contextlib
import os
import zipfile

import torch

from .atomic_file import atomic_write_bytes
from .model_minimind import MiniMindConfig, MiniMindForCausalLM


def weight_path(out_dir: str, stage: str, hidden_size: int, use_moe: bool) -> str:
    return os.path.join(out_dir, f"{stage}_{hidden_size}{'_moe' if use_moe else ''}.pth")


def nonfinite_tensors(obj, name: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state that hold NaN or inf."""
    if torch.is_tensor(obj):
        return [name or "tensor"] if obj.is_floating_point() and not torch.isfinite(obj).all() else []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    return [bad for k, v in items for bad in nonfinite_tensors(v, f"{name}.{k}" if name else str(k))]


def atomic_save(obj, path: str):
    """torch.save to path, atomically; refuses (ValueError) a state holding NaN or inf, which would poison every run
    that loads it."""
    if bad := nonfinite_tensors(obj):
        raise ValueError(f"refusing to write {path}: non-finite values in {len(bad)} tensors ({', '.join(bad[:3])})")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write_bytes(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str):
    """torch.load(weights_only=True) of a file checked first: every failure is a ValueError that names the file and
    says what is wrong. torch.save writes a zip whose entries carry CRC-32 checksums (torch does not check them on
    load); they are verified here, so flipped bytes anywhere in the file are caught, not loaded as garbage weights."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not a checkpoint")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise ValueError(f"{path}: damaged checkpoint ({type(e).__name__}: {e})") from None
        if bad is not None:
            raise ValueError(f"{path}: damaged checkpoint: the checksum of {bad!r} does not match its bytes "
                             f"(a corrupted copy or disk); use another copy or the resume checkpoint")
    try:  # a legacy (non-zip) file, or damage the checksums cannot see (a truncated zip directory)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError, KeyError, ...)
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def load_state_dict(path: str) -> dict:
    sd = read_checkpoint(path)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):  # a resume checkpoint
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise ValueError(f"{path}: not a state dict (expected parameter names mapped to tensors)")
    # torch.compile and DDP wrappers prefix names; strip them so any of our checkpoints loads.
    return {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in sd.items()}


def load_into(model: torch.nn.Module, state_dict: dict, source: str = "checkpoint", strict: bool = True,
              assign: bool = False):
    """load_state_dict with an error a person can act on: which tensors differ and which flags to check."""
    own = model.state_dict()
    if "lm_head.weight" not in state_dict and "model.embed_tokens.weight" in state_dict:
        state_dict = {**state_dict, "lm_head.weight": state_dict["model.embed_tokens.weight"]}  # tied
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if bad or (strict and (missing or unexpected)):
        lines = bad[:5] + [f"missing: {k}" for k in missing[:5]] + [f"unexpected: {k}" for k in unexpected[:5]]
        c = model.config
        raise ValueError(
            f"{source} does not fit the model built from the size flags (hidden_size={c.hidden_size}, "
            f"num_hidden_layers={c.num_hidden_layers}, num_attention_heads={c.num_attention_heads}, "
            f"num_key_value_heads={c.num_key_value_heads}, use_moe={int(c.use_moe)}, vocab_size={c.vocab_size}):\n  "
            + "\n  ".join(lines) + "\nPass the size flags the checkpoint was trained with.")
    model.load_state_dict(state_dict, strict=strict, assign=assign)
    return model


@contextlib.contextmanager
def meta_device():
    """torch.device("meta") for building a model whose tensors come from a checkpoint, minus one cost: nn.Embedding
    draws its initial weights with normal_, and normal_ on a meta tensor runs a Python reference kernel that imports
    torch._dynamo and sympy (+73 MB of RSS, for a draw that writes nothing). Meta tensors skip it here."""
    normal_ = torch.nn.init.normal_

    def normal_unless_meta(tensor, *args, **kwargs):
        return tensor if tensor.is_meta else normal_(tensor, *args, **kwargs)

    torch.nn.init.normal_ = normal_unless_meta
    try:
        with torch.device("meta"):
            yield
    finally:
        torch.nn.init.normal_ = normal_


def load_native(path: str, config: MiniMindConfig, dtype=torch.float32) -> MiniMindForCausalLM:
    """A model holding the checkpoint's tensors, and at peak little more memory than that. It is built on the meta device (no random init to overwrite), and the checkpoint's half-precision
    tensors are widened one at a time, each freed as its copy is made."""
    sd = load_state_dict(path)
    with meta_device():
        model = MiniMindForCausalLM(config)
    if config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)  # the same tensor as the embedding: widen it once, tie again below
    for key in list(sd):
        sd[key] = sd.pop(key).to(dtype)
    load_into(model, sd, source=path, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    inner = model.model  # the RoPE buffer is not in checkpoints: make it real and compute it
    inner.register_buffer("inv_freq", torch.empty(inner.inv_freq.shape), persistent=False)
    inner.reset_rope()
    return model
