"""The repository's shape: top-level scripts are leaves, the packages depend on each other in one direction, files
stay small. Read from the source (ast), so a lazy import inside a function counts too."""
import ast
import glob
import os

import pytest

from conftest import REPO_ROOT

PACKAGES = ("model", "toolcall", "dataset", "trainer", "evals", "scripts")
# Who may import whom (besides itself). model and toolcall (tools and their executor) are the base; evals judge
# models on data; scripts use everything.
ALLOWED = {
    "model": set(),
    "toolcall": set(),
    "dataset": {"model", "toolcall"},
    "trainer": {"model", "dataset", "toolcall"},
    "evals": {"model", "dataset", "trainer", "toolcall"},
    "scripts": {"model", "toolcall", "dataset", "trainer", "evals"},
}
MAX_LINES = 600


def top_level_scripts() -> set[str]:
    return {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO_ROOT, "*.py"))}


def python_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(REPO_ROOT, folder, "**", "*.py"), recursive=True))


def module_name(path: str) -> str:
    rel = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
    return rel.removesuffix(".__init__")


def imports_of(path: str) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module_name(path) if path.endswith("__init__.py") else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import module`
    return found


def test_no_package_module_imports_a_top_level_script():
    scripts = top_level_scripts()
    bad = [(module_name(p), m) for pkg in PACKAGES for p in python_files(pkg) for m in imports_of(p)
           if m.split(".")[0] in scripts]
    assert not bad, f"top-level scripts are leaves; these modules import one: {bad}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_dependencies_point_one_way(package):
    bad = sorted({(module_name(p), m) for p in python_files(package) for m in imports_of(p)
                  if m.split(".")[0] in PACKAGES and m.split(".")[0] not in ALLOWED[package] | {package}})
    assert not bad, f"{package} may import only {sorted(ALLOWED[package])}: {bad}"


def test_no_import_cycles():
    modules = {module_name(p): p for pkg in PACKAGES for p in python_files(pkg)}
    graph = {m: sorted(i for i in imports_of(p) if i in modules and i != m) for m, p in modules.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles}"


def test_python_files_stay_small():
    files = glob.glob(os.path.join(REPO_ROOT, "**", "*.py"), recursive=True)
    big = {os.path.relpath(p, REPO_ROOT): n for p in files if "/out/" not in p
           and (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES}
    assert not big, f"split these into modules of one job each (over {MAX_LINES} lines): {big}"
