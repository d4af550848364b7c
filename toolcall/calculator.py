"""A calculator that evaluates arithmetic by walking Python's syntax tree — never eval().

Only numbers, + - * / // % ** and parentheses are accepted; every other node (names, attribute access, calls,
subscripts, comprehensions …) is refused by name. Sizes are bounded so a hostile expression cannot hang the
process: the text's length, exponents, and the magnitude of every intermediate result.
"""
import ast
import math
import operator

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 10 ** 30

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# What users and models write for the same operators.
_SPELLINGS = str.maketrans({"×": "*", "÷": "/", "（": "(", "）": ")", "－": "-", "＋": "+", "−": "-"})


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or its value is out of bounds."""


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression such as "(3 + 4) × 5"; whole results come back as int."""
    if not isinstance(expression, str):
        raise CalculatorError("expression must be a string")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    text = expression.translate(_SPELLINGS).strip()
    if not text:
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    value = _eval(tree.body)
    if isinstance(value, float):
        value = round(value, 10)  # 0.1 + 0.2 reads 0.3, as a calculator shows it
        if value.is_integer():
            return int(value)
    return value


def _check(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("result too large")
    return value


def _eval(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculatorError(f"exponent larger than {MAX_EXPONENT}")
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
        except OverflowError:
            raise CalculatorError("result too large") from None
    raise CalculatorError(f"not allowed in a calculation: {type(node).__name__}")
