"""evals/report.py: the --all table's tool rows, with arithmetic by problem and facts by wording."""
from evals.report import post_training_lines


def test_tool_rows_show_the_breakdown():
    row = {"n": 2, "right_tool": 1.0, "args_valid": 1.0, "correct": 0.5, "correct_without_tools": 0.0}
    lines = post_training_lines({"tools": {
        "arithmetic": {**row, "correct_by": {"boxes": 1.0, "date": 0.0}},
        "fact": {**row, "correct_by": {"echo": 0.75, "paraphrase": 0.25}},
        "none": {"n": 1, "called": 0.0, "false_call": 0.0}}})
    table = "\n".join(lines)
    assert "| tools | held-out arithmetic: correct with tools (vs the same model without) | **50.0%** | 0.0% |" in table
    assert "| tools | … date | **0.0%** |  |" in table and "| tools | … paraphrase | **25.0%** |  |" in table
    assert "| tools | false tool calls on prompts that need none | **0.0%** |  |" in table
    assert post_training_lines({}) == []


def test_agent_rows_compare_each_task_with_the_tool_sft_model():
    def chain(by):
        return {"n": 4, "right_tool": 1.0, "args_valid": 1.0, "correct": 0.5, "correct_without_tools": 0.0,
                "correct_by": by}
    none = {"n": 1, "called": 0.0, "false_call": 0.0}
    lines = post_training_lines({
        "tools": {"chain": chain({"age": 1.0, "date_after": 0.25}), "none": none},
        "agent": {"chain": chain({"age": 1.0, "date_after": 0.5}), "none": none,
                  "reward_first": 0.5, "reward_last": 0.9, "kl_last": 0.01, "kl_max": 0.02}})
    table = "\n".join(lines)
    assert "| agentic RL | … date_after | **50.0%** | 25.0% |" in table
    assert "| agentic RL | … age | **100.0%** | 100.0% |" in table
