"""The package's import graph: no cycles, no imports against the layering, no private names across modules.

Every ``import`` under src/udeblur counts, including those inside functions (a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import udeblur

PKG = Path(udeblur.__file__).parent
ROOT = "udeblur"

# (importer prefix, imported prefix): directions the layering forbids
FORBIDDEN = [
    ("udeblur.inference", "udeblur.training"),
    ("udeblur.metrics", "udeblur.training"),
    ("udeblur.metrics", "udeblur.evaluation"),
    ("udeblur.archs", "udeblur.training"),
    ("udeblur.archs", "udeblur.inference"),
    ("udeblur.archs", "udeblur.evaluation"),
    ("udeblur.archs", "udeblur.cli"),
    ("udeblur", "udeblur.cli"),  # the command line sits on top: only cli itself and __main__ import it
]
ALLOWED_CLI_IMPORTERS = ("udeblur.cli", "udeblur.__main__")


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = [ROOT, *path.relative_to(PKG).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the package modules it imports, and the private names imported from another module."""
    mods = _modules()
    edges: dict[str, set[str]] = {name: set() for name in mods}
    private: list[str] = []
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [(alias.name, None) for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module, a.name)
                           for a in node.names]
            for target, imported in targets:
                if not target.startswith(ROOT):
                    continue
                while target not in mods and "." in target:  # `import udeblur.x.y` of a name, not a module
                    target = target.rpartition(".")[0]
                if target != name:
                    edges[name].add(target)
                if imported and imported.startswith("_") and not imported.startswith("__") and target != name:
                    private.append(f"{name} imports {imported} from {target}")
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_the_graph_is_read():  # guards the tests below against passing on an empty graph
    edges, _ = _graph()
    assert "udeblur.model_files" in edges["udeblur.training.state"]
    assert "udeblur.training.trainer" in edges["udeblur.cli.train_cmd"]  # an import inside a function


def test_no_import_cycles():
    edges, _ = _graph()
    # a module importing its own package's __init__ is not a cycle Python can trip on (the package loads first)
    edges = {m: {t for t in ts if t not in _parents(m)} for m, ts in edges.items()}
    assert _cycles(edges) == []


def test_no_imports_against_the_layering():
    edges, _ = _graph()
    wrong = []
    for module, targets in edges.items():
        for target in targets:
            for importer, imported in FORBIDDEN:
                if not (_in(module, importer) and _in(target, imported)):
                    continue
                if imported == "udeblur.cli" and module.startswith(ALLOWED_CLI_IMPORTERS):
                    continue
                wrong.append(f"{module} -> {target}")
    assert sorted(wrong) == []


def test_no_private_names_across_modules():
    _, private = _graph()
    assert private == []
