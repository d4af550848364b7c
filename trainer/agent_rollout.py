"""Multi-turn tool rollouts for agentic RL: generate → parse tool calls → execute → append the results → continue,
up to max_turns, at the token level.

Each row's completion is the policy's own sampled tokens interleaved with the template text that carries the tool
results (`<|im_end|>`'s newline, the tool turn, the next `<|im_start|>assistant\\n`). The policy's tokens keep
their sampling log-probs and action mask 1; the tool text has action mask 0, so the loss never trains the model to
write what a tool said. The sampled tokens are kept as sampled (never re-tokenized from text), so the training
forward scores exactly what the sampler produced; the tool text is tokenized once, on its own.
"""
from dataclasses import dataclass, field

import torch

from dataset.tool_messages import template_arguments
from toolcall.parse import parse_reply
from toolcall.registry import ToolBox
from trainer.rollout import Rollout, left_pad_ids


@dataclass
class AgentTrace:
    messages: list[dict]  # the conversation as rendered so far (prompt messages, then the turns)
    ids: list[int] = field(default_factory=list)  # completion tokens: sampled and tool text
    action: list[int] = field(default_factory=list)  # 1 = sampled by the policy
    logps: list[float] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)  # ToolBox.call's records: name, arguments, result, valid, …
    malformed: int = 0
    final: str = ""
    finished: bool = False  # ended with a reply that calls no tool, within the turn and length budget


def render(tokenizer, messages, add_generation_prompt=False) -> str:
    messages, extra = template_arguments(messages)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         **extra)


class AgentRollout:
    """sampler: a one-turn LocalRollout (its max_new_tokens bounds each turn)."""

    def __init__(self, sampler, tokenizer, toolbox: ToolBox, max_turns: int = 3, max_total_len: int = 1024):
        self.sampler, self.tokenizer, self.toolbox = sampler, tokenizer, toolbox
        self.max_turns, self.max_total_len = max_turns, max_total_len

    def tool_text(self, messages: list[dict], assistant: dict, results: list[dict]) -> str:
        """What the template writes after an assistant turn's closing <|im_end|> up to the next reply: the rest of
        the assistant turn (its newline), the tool turn and the generation prompt."""
        before = render(self.tokenizer, messages + [assistant])
        after = render(self.tokenizer, messages + [assistant] + results, add_generation_prompt=True)
        if not after.startswith(before):
            raise ValueError("chat template is not prefix-stable around tool results")
        eos = self.tokenizer.eos_token
        tail = before[before.rindex(eos) + len(eos):]  # the template's text after the assistant's <|im_end|>
        return tail + after[len(before):]

    @torch.no_grad()
    def __call__(self, model, prompts: list[list[dict]], num_generations: int = 1) -> tuple[Rollout, list[AgentTrace]]:
        tok = self.tokenizer
        prompt_ids = [tok.encode(render(tok, p, add_generation_prompt=True), add_special_tokens=False)
                      for p in prompts]
        rows = [i for i in range(len(prompts)) for _ in range(num_generations)]
        traces = [AgentTrace(list(prompts[i])) for i in rows]
        contexts = [list(prompt_ids[i]) for i in rows]
        active, device = list(range(len(rows))), next(model.parameters()).device
        for turn in range(self.max_turns):
            if not active:
                break
            out = self.sampler(model, [contexts[r] for r in active], num_generations=1)
            still = []
            for j, r in enumerate(active):
                trace, keep = traces[r], out.completion_mask[j].bool()
                ids = out.completion_ids[j][keep].tolist()
                trace.ids += ids
                trace.action += [1] * len(ids)
                trace.logps += out.logps[j][keep].tolist()
                contexts[r] += ids
                text = tok.decode(ids, skip_special_tokens=True)
                parsed = parse_reply(text)
                trace.malformed += parsed.error is not None
                if not bool(out.finished[j]):
                    continue  # the turn ran out of tokens: the rollout ends unfinished
                if not parsed.tool_calls:
                    trace.final, trace.finished = text, True
                    continue
                if turn == self.max_turns - 1:
                    continue  # calls on the last allowed turn: unfinished
                assistant = {"role": "assistant", "content": parsed.content,
                             "tool_calls": [{"type": "function", "function": c} for c in parsed.tool_calls]}
                results = []
                for call in parsed.tool_calls:
                    record = self.toolbox.call(call["name"], call["arguments"])
                    trace.calls.append(record)
                    results.append({"role": "tool", "content": record["result"]})
                obs = tok.encode(self.tool_text(trace.messages, assistant, results), add_special_tokens=False)
                trace.messages += [assistant] + results
                if len(contexts[r]) + len(obs) + 1 > self.max_total_len:
                    continue  # no room for another turn: unfinished
                trace.ids += obs
                trace.action += [0] * len(obs)
                trace.logps += [0.0] * len(obs)
                contexts[r] += obs
                still.append(r)
            active = still
        return self._rollout(prompt_ids, rows, traces, device), traces

    def _rollout(self, prompt_ids, rows, traces, device) -> Rollout:
        pad = self.sampler.pad_token_id
        p_ids, p_mask = left_pad_ids([prompt_ids[i] for i in rows], pad)
        width = max(1, max(len(t.ids) for t in traces))
        n = len(traces)
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask, action = torch.zeros_like(ids), torch.zeros_like(ids)
        logps = torch.zeros((n, width), dtype=torch.float32)
        for r, t in enumerate(traces):
            k = len(t.ids)
            ids[r, :k], mask[r, :k] = torch.tensor(t.ids, dtype=torch.long), 1
            action[r, :k], logps[r, :k] = torch.tensor(t.action), torch.tensor(t.logps)
        return Rollout(p_ids.to(device), p_mask.to(device), ids.to(device), mask.to(device), logps.to(device),
                       torch.tensor([t.finished for t in traces], device=device), action.to(device))
