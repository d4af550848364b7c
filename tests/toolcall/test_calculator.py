"""The calculator walks the syntax tree: arithmetic only, bounded sizes, never eval()."""
import pytest

from toolcall.calculator import CalculatorError, calculate


@pytest.mark.parametrize("expr, value", [
    ("2+5", 7), ("(3 + 4) × 5", 35), ("7/2", 3.5), ("8 / 4", 2), ("0.1 + 0.2", 0.3), ("2**10", 1024),
    ("-3 + 10 % 4", -1), ("2020 - 1977", 43), ("(3 + 10 - 1) % 7 + 1", 6), ("9 ÷ 3", 3), ("17 // 5", 3),
])
def test_arithmetic(expr, value):
    assert calculate(expr) == value and type(calculate(expr)) is type(value)


@pytest.mark.parametrize("expr, reason", [
    ("__import__('os').system('true')", "Call"),
    ("(1).real", "Attribute"),
    ("().__class__.__bases__[0].__subclasses__()", "Call"),
    ("[1, 2][0]", "Subscript"),
    ("x + 1", "Name"),
    ("lambda: 1", "Lambda"),
    ("'a' * 3", "Constant"),
    ("True + 1", "Constant"),
    ("2 ** 100000", "exponent"),
    ("9 ** 9 ** 9", "exponent"),
    ("10 ** 60 * 10 ** 60", "too large"),
    ("1e308 * 10", "too large"),
    ("1 / 0", "division by zero"),
    ("5 % 0", "division by zero"),
    ("1 +", "not an arithmetic expression"),
    ("", "empty"),
    ("1 + " * 100 + "1", "longer than"),
])
def test_refusals(expr, reason):
    with pytest.raises(CalculatorError, match=reason):
        calculate(expr)


def test_non_string_is_refused():
    with pytest.raises(CalculatorError, match="string"):
        calculate(12)
