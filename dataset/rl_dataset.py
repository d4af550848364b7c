"""Prompts for RL from rewards (upstream's rlaif jsonl), with the reference a reward checks against.

    {"conversations": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}], "answer": "7"}

The prompt is the conversation without a final assistant message, rendered with the chat template and the
generation prompt (`<|im_start|>assistant\\n`); the reference is the row's "answer", else that final assistant
message's content (upstream's files carry a reply there), else "". Prompts longer than max_seq_len are refused with
file:line (cutting a prompt would change the task the reward checks).
"""
import torch

from dataset.lm_dataset import _JsonlDataset
from dataset.tool_messages import normalize_messages, require_tool_tokens, template_arguments, uses_tools
from dataset.validate import validate_agent_rl, validate_rlaif


class RLAIFDataset(_JsonlDataset):
    """Returns {"prompt_ids": LongTensor[p], "prompt": str, "reference": str, "reference_reply": str}; batch with
    `collate_prompts`."""

    validator = staticmethod(validate_rlaif)

    def __init__(self, data_path, tokenizer, max_seq_len=512, skip_bad_lines=False, cache_dir=None):
        super().__init__(data_path, tokenizer, max_seq_len, skip_bad_lines, cache_dir)

    def row(self, i):
        """(prompt messages, reference answer, reference reply: the final assistant message or "")."""
        obj = self.index[i]
        msgs = obj["conversations"]
        prompt_msgs, reply = (msgs[:-1], msgs[-1]["content"]) if msgs[-1]["role"] == "assistant" else (msgs, "")
        return prompt_msgs, obj.get("answer", reply), reply

    def __getitem__(self, i):
        prompt_msgs, reference, reply = self.row(i)
        try:
            chat, extra = template_arguments(normalize_messages(prompt_msgs))  # tools on the system message
            text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True, **extra)
        except Exception as e:
            raise ValueError(f"{self.index.where(i)}: {e}") from e
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) > self.max_seq_len:
            raise ValueError(f"{self.index.where(i)}: the prompt is {len(ids)} tokens, longer than --max_seq_len "
                             f"{self.max_seq_len} (raise it, or drop the row)")
        return {"prompt_ids": torch.tensor(ids, dtype=torch.long), "prompt": text, "reference": reference,
                "reference_reply": reply}


def collate_prompts(items, pad_id: int = 0):
    """Left-pad prompts into one batch: {"prompt_ids", "prompt_mask", "prompt", "reference", "reference_reply"}."""
    width = max(len(it["prompt_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, it in enumerate(items):
        n = len(it["prompt_ids"])
        ids[row, width - n:] = it["prompt_ids"]
        mask[row, width - n:] = 1
    return {"prompt_ids": ids, "prompt_mask": mask, "prompt": [it["prompt"] for it in items],
            "reference": [it["reference"] for it in items],
            "reference_reply": [it.get("reference_reply", "") for it in items]}


class AgentRLDataset(RLAIFDataset):
    """Agentic RL prompts (upstream's agent_rl jsonl): {"messages": the prompt chat with its tools, "gt": [str]};
    batch with `collate_agent`. The rendered prompt must fit max_seq_len (file:line otherwise)."""

    validator = staticmethod(validate_agent_rl)

    def __getitem__(self, i):
        obj = self.index[i]
        try:
            msgs = normalize_messages(obj["conversations"])
            prompt = msgs[:-1] if msgs[-1]["role"] == "assistant" else msgs
            if uses_tools(prompt):
                require_tool_tokens(self.tokenizer, "agent_rl rows")
            chat, extra = template_arguments(prompt)
            ids = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True, **extra)
        except Exception as e:
            raise ValueError(f"{self.index.where(i)}: {e}") from e
        n = len(self.tokenizer.encode(ids, add_special_tokens=False))
        if n > self.max_seq_len:
            raise ValueError(f"{self.index.where(i)}: the prompt is {n} tokens, longer than --max_seq_len "
                             f"{self.max_seq_len} (raise it, or drop the row)")
        gt = obj["gt"] if isinstance(obj["gt"], list) else [obj["gt"]]
        return {"messages": prompt, "gt": [str(v) for v in gt]}


def collate_agent(items):
    return {"messages": [it["messages"] for it in items], "gt": [it["gt"] for it in items]}
