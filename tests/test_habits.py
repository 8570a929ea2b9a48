"""The suite's own habits, checked over its source: each test expects one outcome,
asserts no time, and patches no private name."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"time", "monotonic", "perf_counter", "process_time"}
PATCHERS = {"setattr", "delattr", "patch", "object"}


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "bench" not in p.parts)


def _findings(check) -> list[str]:
    found = []
    for path in _test_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            problem = check(node)
            if problem:
                found.append(f"{path.relative_to(TESTS)}:{node.lineno}: {problem}")
    return found


def _is_clock_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCKS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "time"
    )


def test_no_assertion_accepts_one_of_several_literal_outcomes():
    def check(node):
        if not isinstance(node, ast.Assert):
            return None
        for part in ast.walk(node.test):
            if isinstance(part, ast.Compare) and any(
                isinstance(op, ast.In) for op in part.ops
            ):
                for choices in part.comparators:
                    if isinstance(choices, ast.Tuple | ast.Set | ast.List) and all(
                        isinstance(item, ast.Constant | ast.Attribute)
                        for item in choices.elts
                    ):
                        return ast.unparse(node.test)
        return None

    assert _findings(check) == []


def test_no_assertion_reads_the_clock():
    def check(node):
        if isinstance(node, ast.Assert) and any(
            _is_clock_call(part) for part in ast.walk(node.test)
        ):
            return ast.unparse(node.test)
        return None

    assert _findings(check) == []


def test_no_test_patches_a_private_name():
    def check(node):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in PATCHERS
        ):
            return None
        names = [
            arg.value
            for arg in node.args[:2]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        if any(name.rsplit(".", 1)[-1].startswith("_") for name in names):
            return ast.unparse(node)
        return None

    assert _findings(check) == []
