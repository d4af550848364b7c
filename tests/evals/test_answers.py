"""Tests for evals/answers.py: how a free-text reply is matched against the expected answer."""
from evals.answers import check_answer, check_fact_answer, first_sentence, split_reasoning


def test_check_answer():
    assert check_answer("Zhang Wei was born in  hangzhou .", "Hangzhou")
    assert check_answer("He was born on March 12,\n1995.", "March 12, 1995")
    assert check_answer("张伟出生在杭州。", "杭州")
    assert not check_answer("张伟出生在苏州。", "杭州")
    assert not check_answer("anything", "")


def test_check_fact_answer_reads_the_first_sentence_only():
    dump = "Luo Guiran was born on December 8, 2004. Luo Guiran works for Qiming Pharmaceuticals."
    assert check_answer(dump, "Qiming Pharmaceuticals") and not check_fact_answer(dump, "Qiming Pharmaceuticals")
    assert check_fact_answer(dump, "December 8, 2004")
    assert check_fact_answer("He was born in Xi'an", "Xi'an")  # no final period
    assert not check_fact_answer("蒋丽丽出生在兰州。蒋丽丽在厦门工作。", "厦门")
    assert first_sentence("  Hi! I am here.") == "Hi!"


def test_split_reasoning():
    assert split_reasoning("<think>\n1+1=2。\n</think>\n<answer>\n2\n</answer>") == ("1+1=2。", "2")
    assert split_reasoning("<answer>\n17\n</answer>") == (None, "17")
    assert split_reasoning("so <answer> 7 </answer> trailing") == (None, "7")
    assert split_reasoning("no tags") == (None, None)


def test_extract_choice():
    from evals.answers import extract_choice
    assert extract_choice("<think>\nLin was born in Hangzhou.\n</think>\n<answer>\nB\n</answer>") == "B"
    assert extract_choice("c. because") == "C"
    assert extract_choice("<answer>\nE\n</answer>") is None
    assert extract_choice("") is None and extract_choice("Hangzhou") is None
