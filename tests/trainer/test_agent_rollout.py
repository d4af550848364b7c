"""Multi-turn tool rollouts (trainer/agent_rollout.py) and the agent reward (trainer/agent.py): the token layout is
exactly the chat template's text, only the policy's tokens are trained, and their log-probs line up with the
training forward."""
import pytest
import torch
from transformers import AutoTokenizer

from model.model_minimind import MiniMindConfig, MiniMindForCausalLM
from toolcall.parse import parse_reply
from toolcall.world import world_toolbox
from evals.agent_reward import agent_reward
from trainer.agent import AgentScorer
from trainer.agent_rollout import AgentRollout, render
from trainer.grpo import GRPOLoss
from trainer.rollout import Rollout, completion_logps, left_pad_ids, token_logps

PEOPLE = [{"name_zh": "蒋宇雪", "name_en": "Jiang Yuxue", "birth_date": {"zh": "1977年7月12日", "en": "July 12, 1977"},
           **{a: {"zh": "甲", "en": "A"} for a in ("birth_city", "university", "major", "employer", "work_city")}}]
CALC = '<tool_call>{"name": "calculator", "arguments": {"expression": "3 + 4"}}</tool_call>'
LOOKUP = '<tool_call>{"name": "lookup_person", "arguments": {"name": "Jiang Yuxue", "attribute": "birth_date"}}' \
         '</tool_call>'
WEEKDAY = '<tool_call>{"name": "weekday", "arguments": {"date": "July 12, 1977"}}</tool_call>'
SCRIPTS = [  # per rollout row, the reply of each turn
    [CALC, "<answer>\n7\n</answer>"],
    [LOOKUP, WEEKDAY, "<answer>\nTuesday\n</answer>"],
    ["<tool_call>{bad</tool_call>"],  # malformed: taken as a final reply
    [CALC, CALC, CALC],  # still calling on the last turn: unfinished
]


class ScriptedSampler:
    """Plays SCRIPTS turn by turn, with the model's own (teacher-forced) log-probs of each scripted reply."""
    pad_token_id = 0

    def __init__(self, tokenizer, model, max_turns=3):
        self.tok, self.model, self.max_turns = tokenizer, model, max_turns
        self.active, self.turn = list(range(len(SCRIPTS))), 0  # the rows AgentRollout continues, in its order

    def __call__(self, model, contexts, num_generations=1):
        assert len(contexts) == len(self.active)
        rows = [self.tok.encode(SCRIPTS[r][self.turn], add_special_tokens=False) + [self.tok.eos_token_id]
                for r in self.active]
        self.turn += 1
        self.active = [r for r in self.active if parse_reply(SCRIPTS[r][self.turn - 1]).tool_calls
                       and self.turn < self.max_turns]
        width = max(map(len, rows))
        comp = torch.zeros((len(rows), width), dtype=torch.long)
        mask, logps = torch.zeros_like(comp), torch.zeros((len(rows), width))
        for i, (ctx, ids) in enumerate(zip(contexts, rows)):
            full = torch.tensor([ctx + ids])
            logits = self.model(full).logits[0, len(ctx) - 1:-1]
            comp[i, :len(ids)], mask[i, :len(ids)] = torch.tensor(ids), 1
            logps[i, :len(ids)] = token_logps(logits, torch.tensor(ids))
        p_ids, p_mask = left_pad_ids(contexts, 0)
        return Rollout(p_ids, p_mask, comp, mask, logps, torch.ones(len(rows), dtype=torch.bool))


@pytest.fixture(scope="module")
def setup(tiny_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=64, vocab_size=len(tok),
                                               max_position_embeddings=2048)).eval()
    box = world_toolbox(PEOPLE)
    prompt = [{"role": "system", "content": "", "tools": box.schemas()}, {"role": "user", "content": "3+4?"}]
    sampler = ScriptedSampler(tok, model)
    rollout, traces = AgentRollout(sampler, tok, box, max_turns=3)(model, [prompt, prompt], num_generations=2)
    return tok, model, box, prompt, rollout, traces


def test_token_layout_is_the_templates_text(setup):
    tok, _model, _box, prompt, rollout, traces = setup
    for r, trace in enumerate(traces):
        ids = torch.cat([rollout.prompt_ids[r][rollout.prompt_mask[r].bool()],
                         rollout.completion_ids[r][rollout.completion_mask[r].bool()]])
        text = tok.decode(ids.tolist())
        convo = trace.messages + ([{"role": "assistant", "content": trace.final}] if trace.finished else [])
        if trace.finished:
            assert text == render(tok, convo).removesuffix("\n")  # up to the last <|im_end|>
        # the policy's tokens are exactly the scripted replies, each closed by <|im_end|>
        act = rollout.completion_ids[r][rollout.action_mask[r].bool()].tolist()
        played = SCRIPTS[r][:len([i for i in act if i == tok.eos_token_id])]
        assert tok.decode(act) == "".join(s + "<|im_end|>" for s in played)
    assert [t.finished for t in traces] == [True, True, True, False]
    assert [c["result"] for c in traces[1].calls] == ["July 12, 1977", "Tuesday"]
    assert traces[2].malformed == 1 and traces[3].calls and len(traces[3].calls) == 2  # 3rd call never executed
    # tool text sits between turns and is never an action
    between = rollout.completion_ids[0][(rollout.action_mask[0] == 0) & (rollout.completion_mask[0] == 1)].tolist()
    assert tok.decode(between) == "\n<|im_start|>user\n<tool_response>7</tool_response><|im_end|>\n" \
                                  "<|im_start|>assistant\n"


def test_policy_logps_line_up_with_the_training_forward(setup):
    _tok, model, _box, _prompt, rollout, _traces = setup
    train = completion_logps(model, rollout)
    act = rollout.action_mask.bool()
    assert act.sum() > 0 and (train[act] - rollout.logps[act]).abs().max().item() < 1e-5
    assert (rollout.logps[~act] == 0).all()


def test_reward_and_loss_mask(setup):
    tok, model, _box, _prompt, rollout, traces = setup
    scores = [agent_reward(t, gt)[0] for t, gt in zip(traces, [["7"], ["Tuesday"], ["7"], ["7"]])]
    assert scores == [1.2, 1.2, 0.0, 0.0]
    assert agent_reward(traces[0], ["7.0"])[0] == 1.2 and agent_reward(traces[0], ["8"])[0] == pytest.approx(0.2)

    class Fixed:  # replays the rollout above through the scorer interface
        def __call__(self, model, prompts, num_generations):
            return rollout, traces
    scorer = AgentScorer(Fixed(), tok, agent_reward, num_generations=2, temperature=1.0)
    batch = GRPOLoss(scorer, None).prepare(model, {"messages": [None, None], "gt": [["7"], ["7"]]})
    assert torch.equal(batch["loss_mask"], rollout.action_mask)
    assert batch["stats"]["reward/correct"] == 0.25
