"""The import graph of modelshield runs one way and has no cycle (layers as data: layers.toml).

Every `import` / `from ... import` statement of every module counts, including imports inside
functions (a lazy import is still a dependency) and imports under `if TYPE_CHECKING:` (a type
from a higher layer is still an upward dependency); only the cycle check leaves the latter out,
since they never run.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    typing_only: bool
    relative: bool


def _modules() -> dict[str, Path]:
    """Every module of the package tree as users import it, by dotted name (files only: nothing imported).

    From a checkout the tree reaches the card folders through the links in modelshield/; installed,
    they are ordinary folders."""
    spec = importlib.util.find_spec("modelshield")
    assert spec is not None and spec.origin
    root = Path(spec.origin).parent
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if (Path(folder, d) / "__init__.py").is_file())
        for file in files:
            if file.endswith(".py"):
                parts = Path(folder, file).relative_to(root).with_suffix("").parts
                name = ".".join(("modelshield",) + (parts[:-1] if parts[-1] == "__init__" else parts))
                found[name] = Path(folder, file)
    return found


def _typing_only_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = _typing_only_lines(tree)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    parent = ".".join(base + ([node.module] if node.module else []))
                else:
                    parent = node.module or ""
                for alias in node.names:
                    sub = f"{parent}.{alias.name}"
                    targets.append(sub if sub in modules else parent)
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a module we hold
                    target = target.rpartition(".")[0]
                if target.startswith("modelshield") and target != name:
                    relative = isinstance(node, ast.ImportFrom) and node.level > 0
                    edges.append(Edge(name, target, node.lineno, node.lineno in typing_only, relative))
    return edges


@dataclass(frozen=True)
class Layers:
    names: list[str]
    rank: dict[str, int]  # module -> layer index (0 = highest)
    group: dict[str, str]  # module -> the pattern that placed it
    siblings: set[int]

    @classmethod
    def load(cls, modules: dict[str, Path]) -> "Layers":
        raw = tomllib.loads((HERE / "layers.toml").read_text(encoding="utf-8"))
        names, rank, group, siblings = [], {}, {}, set()
        best: dict[str, int] = {}  # module -> specificity of the pattern that placed it
        for index, layer in enumerate(raw["layer"]):
            names.append(layer["name"])
            if layer.get("siblings"):
                siblings.add(index)
            for pattern in layer["modules"]:
                prefix = pattern[:-2] if pattern.endswith(".*") else None
                for module in modules:
                    if module == pattern:
                        specificity = 10_000  # a module named exactly beats any pattern
                    elif prefix and (module == prefix or module.startswith(prefix + ".")):
                        specificity = len(prefix)  # the longest package pattern wins
                    else:
                        continue
                    assert best.get(module) != specificity, f"{module} is placed twice by {pattern}"
                    if specificity > best.get(module, -1):
                        best[module], rank[module], group[module] = specificity, index, pattern
        return cls(names, rank, group, siblings)


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], list[Edge], Layers]:
    modules = _modules()
    return modules, _edges(modules), Layers.load(modules)


def test_every_module_has_a_layer(graph):
    modules, _, layers = graph
    missing = sorted(set(modules) - set(layers.rank))
    assert not missing, f"modules without a layer (add them to tests/architecture/layers.toml): {missing}"


def test_the_walk_sees_the_known_edges(graph):
    """The walk itself works: edges that exist by design are found (a checker that sees nothing passes)."""
    _, edges, _ = graph
    pairs = {(e.source, e.target) for e in edges}
    assert ("modelshield.scanner.engine", "modelshield.scanner.dispatch") in pairs
    assert ("modelshield.sbom.context", "modelshield.scanner.findings") in pairs
    assert ("modelshield.scanner.formats.pickle", "modelshield.scanner.analysis.picklevm") in pairs
    assert any(e.typing_only for e in edges)


def _package(module: str) -> str:
    """The installed package a module belongs to: modelshield.scanner / .sbom / .advisories, or the API."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1] in ("scanner", "sbom", "advisories") else "modelshield"


def test_imports_across_packages_are_absolute(graph):
    """`sbom` imports `modelshield.scanner...`, never `..scanner` (which only works inside the namespace)."""
    _, edges, _ = graph
    relative = [f"{e.source}:{e.line} imports {e.target} relatively" for e in edges
                if e.relative and _package(e.source) != _package(e.target)]
    assert not relative, "\n".join(relative)


def test_no_import_from_a_higher_layer(graph):
    _, edges, layers = graph
    upward = [f"{e.source}:{e.line} imports {e.target} ({layers.names[layers.rank[e.target]]} is above "
              f"{layers.names[layers.rank[e.source]]})"
              for e in edges if e.source in layers.rank and e.target in layers.rank
              and layers.rank[e.target] < layers.rank[e.source]]
    assert not upward, "\n".join(upward)


def test_siblings_never_import_one_another(graph):
    _, edges, layers = graph
    crossing = [f"{e.source}:{e.line} imports {e.target}" for e in edges
                if e.source in layers.rank and e.target in layers.rank
                and layers.rank[e.source] == layers.rank[e.target] and layers.rank[e.source] in layers.siblings
                and layers.group[e.source] != layers.group[e.target]]
    assert not crossing, "\n".join(crossing)


def test_no_import_cycle(graph):
    modules, edges, _ = graph
    succ: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if not e.typing_only:
            succ[e.source].add(e.target)
    cycles = [c for c in _strongly_connected(succ) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def _strongly_connected(succ: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion limits are not our test)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in succ:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
    return out


def test_exceptions_live_in_one_module_per_package(graph):
    """Exception classes are defined in scanner/errors.py, sbom/errors.py, advisories/errors.py only."""
    import builtins

    modules, _, _ = graph
    exception_names = {name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException)}
    for name, path in modules.items():
        if name.endswith(".errors"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            exception_names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    stray = []
    for name, path in modules.items():
        if name.endswith(".errors"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                         for b in node.bases}
                if bases & exception_names:
                    stray.append(f"{name}.{node.name}")
    assert not stray, f"exception classes outside the errors modules: {stray}"
