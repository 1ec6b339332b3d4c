"""The model_code.ml modules import each other in one direction only, and only at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import model_code.ml

PACKAGE = "model_code.ml"
ROOT = Path(model_code.ml.__file__).parent
MODULES = sorted(p.stem for p in ROOT.glob("*.py") if p.stem != "__init__")


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Full dotted names a statement imports (``from a import b`` gives ``a.b`` and ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    # Relative imports resolve against this package (level 1) or its parents.
    anchor = PACKAGE.split(".")[: PACKAGE.count(".") + 2 - node.level] if node.level else []
    base = ".".join([*anchor, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _imports(tree: ast.Module) -> tuple[set[str], list[str]]:
    """(names imported at module level, names imported inside a function or lambda)."""
    top: set[str] = set()
    nested: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            (nested.extend if in_function else top.update)(_imported(node))
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return top, nested


def _tree(module: str) -> ast.Module:
    return ast.parse((ROOT / f"{module}.py").read_text(), filename=f"{module}.py")


def import_graph() -> dict[str, set[str]]:
    """Module -> the sibling model_code.ml modules it imports at module level."""
    graph = {}
    for module in MODULES:
        top, _ = _imports(_tree(module))
        graph[module] = {n.split(".")[2] for n in top if n.startswith(f"{PACKAGE}.")} & set(MODULES)
        graph[module].discard(module)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path whose last node is its first, or None if it is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    top, nested = _imports(ast.parse("import os\ndef f():\n    from model_code.ml import models\n"))
    assert top == {"os"} and nested == ["model_code.ml", "model_code.ml.models"]
    relative = _imports(ast.parse("from .models import load_learner\nfrom .. import ml\n"))[0]
    assert relative == {
        "model_code.ml.models",
        "model_code.ml.models.load_learner",
        "model_code",
        "model_code.ml",
    }


def test_model_code_ml_has_no_import_cycle():
    graph = import_graph()
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"
    # The edges this layout relies on, so a refactor that drops a module shows up here too.
    assert graph["artifacts"] == set()
    assert {"artifacts", "forecasts", "models", "regime"} <= graph["loading"]
    assert "loading" in graph["registry"]
    assert "loading" not in graph["models"] | graph["forecasts"] | graph["regime"]


@pytest.mark.parametrize("module", MODULES)
def test_no_function_level_import_of_model_code(module):
    _, nested = _imports(_tree(module))
    assert not [n for n in nested if n == "model_code" or n.startswith("model_code.")]


def test_artifacts_is_a_leaf():
    top, _ = _imports(_tree("artifacts"))
    assert not [n for n in top if n.startswith("model_code")]
