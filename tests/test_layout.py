"""The package's shape: modules of one job and bounded size, imports that flow one way
(no cycles, nothing from tests or bench, no JAX in the report)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bottleneck_cli"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at any depth of its code (absolute names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= imports_of_node(name, path, node)
    return found


def test_modules_stay_small():
    big = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in big.items() if k > MAX_LINES} == {}


def test_no_module_imports_tests_or_bench():
    for name, path in modules().items():
        bad = {m for m in imports(name, path) if m.split(".")[0] in ("tests", "bench")}
        assert not bad, (name, bad)


def test_report_never_imports_jax_or_the_trainer():
    banned = ("jax", "flax", "optax", "bottleneck_cli.train", "bottleneck_cli.cohort",
              "bottleneck_cli.steps", "bottleneck_cli.models", "bottleneck_cli.metrics",
              "bottleneck_cli.spectra", "bottleneck_cli.tasks")
    for name, path in modules().items():
        if name.startswith("bottleneck_cli.report"):
            # jax._src: the report asks an already-loaded JAX whether it started a backend
            # (fork safety) and never loads it (test_report.py checks sys.modules)
            bad = {m for m in imports(name, path)
                   if m.startswith(banned) and not m.startswith("jax._src")}
            assert not bad, (name, bad)


def test_no_import_cycles_at_module_level():
    """Module-level imports between the package's modules form no cycle."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= imports_of_node(name, path, node)
        graph[name] = {d for d in deps if d in mods and d != name}
    seen, stack = set(), []

    def visit(n):
        if n in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
        if n in seen:
            return
        stack.append(n)
        for d in sorted(graph[n]):
            visit(d)
        stack.pop()
        seen.add(n)

    for n in sorted(graph):
        visit(n)


def imports_of_node(name: str, path: Path, node) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    base = package
    for _ in range(max(node.level - 1, 0)):
        base = base.rpartition(".")[0]
    mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
    return {mod} | {f"{mod}.{a.name}" for a in node.names}
