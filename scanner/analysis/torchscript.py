"""TorchScript code (`code/` of a `torch.jit.save` archive) against an operator allowlist.

`torch.jit.load` (and `torch.load` of such an archive) compiles every `code/**/*.py` file with the
TorchScript compiler, not with Python: a name can only resolve to a registered operator
(`torch.X` is `aten::X`, `ops.NS.X` is `NS::X`), a compiler builtin (`len`, `print`,
`annotate`...), a class or function of the archive itself (`__torch__....`), a TorchBind class, or a
method of one of those. Methods run on load too (`__setstate__`). So instead of guessing what
Python might do, every reference is resolved the way the importer does and checked against
`data/torchscript_ops.toml` (generated from torch's registry): an operator with effects outside
the process (files, RPC, Python callbacks) is MS-TS-001 at its table severity, anything not on the
list is MS-TS-002 (high), and code that does not decode or parse is MS-TS-003 (inconclusive).
The source is parsed with `ast` (TorchScript's syntax is a subset of Python's); nothing is compiled.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import datafiles
from ..findings import Severity

if TYPE_CHECKING:
    from ..context import ScanContext

MAX_CODE = 64 << 20  # bytes of code per archive
MAX_LISTED = 50
# torch.jit mangles re-scripted types into `<module>.___torch_mangle_<n>.<Name>` namespaces
_MANGLE = re.compile(r"\.___torch_mangle_\d+(?=\.)")


@dataclass(frozen=True)
class OpTable:
    allowed: frozenset[str]  # "ns::op"
    denied: dict[str, tuple[str, str]]
    builtins: frozenset[str]
    torchbind_classes: frozenset[str]
    torchbind_methods: frozenset[str]


@functools.lru_cache(maxsize=1)
def table() -> OpTable:
    """data/torchscript_ops.toml, loaded once."""
    raw = datafiles.load("torchscript_ops.toml")
    allowed = frozenset(f"{ns}::{op}" for ns, ops in raw["allowed"].items() for op in ops)
    return OpTable(allowed=allowed, denied={k: (v[0], v[1]) for k, v in raw["denied"].items()},
                   builtins=frozenset(raw["builtins"]["names"]),
                   torchbind_classes=frozenset(raw["torchbind"]["classes"]),
                   torchbind_methods=frozenset(raw["torchbind"]["methods"]))


@dataclass
class CodeFile:
    """One `code/` member: its path in the archive and its qualified module (`__torch__.a.b`)."""

    member: str
    module: str
    tree: ast.Module


@dataclass
class _Hit:
    member: str
    line: int | None
    ref: str
    op: str | None
    denied: tuple[str, str] | None = None


@dataclass
class Analysis:
    files: list[CodeFile] = field(default_factory=list)
    methods: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)  # module-level defs, qualified and bare
    classes: set[str] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)
    hits: list[_Hit] = field(default_factory=list)


def module_name(member: str) -> str | None:
    """`archive/code/__torch__/a/b.py` -> `__torch__.a.b`; None outside `code/`."""
    _, sep, rest = member.partition("/code/")
    if not sep:
        rest = member[5:] if member.startswith("code/") else ""
    if not rest.endswith(".py"):
        return None
    return rest[:-3].replace("/", ".")


def parse(member: str, data: bytes, ctx: "ScanContext") -> CodeFile | None:
    """Decode and parse one code file as the importer reads it (UTF-8 source); MS-TS-003 if it cannot."""
    module = module_name(member) or member
    try:
        text = data.decode("utf-8")
        tree = ast.parse(text, filename=member)
    except UnicodeDecodeError as exc:
        _at(ctx, member, "MS-TS-003", error=f"not UTF-8 at byte {exc.start}")
        return None
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        _at(ctx, member, "MS-TS-003", line=line, error=f"does not parse: {getattr(exc, 'msg', exc)}")
        return None
    except RecursionError:
        _at(ctx, member, "MS-TS-003", error="nested too deeply to parse")
        return None
    return CodeFile(member=member, module=module, tree=tree)


def analyse(files: list[CodeFile], ctx: "ScanContext") -> dict[str, Any]:
    """Resolve every reference of the archive's code and report what is not on the allowlist."""
    state = Analysis(files=files)
    for f in files:
        for node in f.tree.body:
            if isinstance(node, ast.ClassDef):
                state.classes.add(_unmangle(f"{f.module}.{node.name}"))
                state.methods.update(n.name for n in node.body
                                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                state.functions.update((_unmangle(f"{f.module}.{node.name}"), node.name))
    for f in files:
        ctx.check_time()
        _Walker(state, f).visit(f.tree)
    _report(state, ctx)
    return {"code_files": len(files), "operators": sorted(state.operators)[:500],
            "classes": len(state.classes), "unlisted": sorted({h.ref for h in state.hits})[:MAX_LISTED]}


class _Walker(ast.NodeVisitor):
    """Checks references in expressions; type annotations are types, not calls."""

    def __init__(self, state: Analysis, f: CodeFile) -> None:
        self.state, self.f = state, f
        self.tab = table()
        self.local: set[str] = set()

    # annotations name types only
    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        if not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        saved = self.local
        self.local = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
        self.local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for stmt in node.body:
            self.visit(stmt)
        self.local = saved

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in node.body:  # bases are `Module` & co., resolved by the importer
            self.visit(stmt)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain and chain[0] in ("torch", "ops", "__torch__", "CONSTANTS"):
            self._reference(chain, node)
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
            if name not in self.tab.builtins and name not in self.local and name not in self.state.functions:
                self._hit(node, name, None)
        elif isinstance(func, ast.Attribute):
            chain = _chain(func)
            if chain and chain[0] in ("torch", "ops", "__torch__", "CONSTANTS"):
                self._reference(chain, func)
            else:
                self._method(func.attr, node)
                self.visit(func.value)
        else:
            self.visit(func)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            self.visit(arg)

    def _method(self, name: str, node: ast.AST) -> None:
        if name in self.state.methods or name in self.tab.torchbind_methods:
            return
        self._operator(f"aten::{name}", f".{name}()", node)

    def _reference(self, chain: list[str], node: ast.AST) -> None:
        dotted = ".".join(chain)
        root = chain[0]
        if root == "CONSTANTS":
            return
        if root == "torch" and len(chain) == 2:
            self._operator(f"aten::{chain[1]}", dotted, node)
        elif root == "ops" and len(chain) == 3:
            self._operator(f"{chain[1]}::{chain[2]}", dotted, node)
        elif root == "__torch__":
            dotted = _unmangle(dotted)
            if dotted in self.state.classes or dotted in self.state.functions:
                return
            if dotted.startswith("__torch__.torch.classes.") and dotted[24:] in self.tab.torchbind_classes:
                return
            parent = dotted.rsplit(".", 1)[0]
            if parent in self.state.classes:  # a class attribute or static method
                return
            self._hit(node, dotted, None)
        else:
            self._hit(node, dotted, None)

    def _operator(self, op: str, ref: str, node: ast.AST) -> None:
        if op in self.tab.denied:
            self._hit(node, ref, op, self.tab.denied[op])
        elif op in self.tab.allowed:
            self.state.operators.add(op)
        else:
            self._hit(node, ref, op)

    def _hit(self, node: ast.AST, ref: str, op: str | None, denied: tuple[str, str] | None = None) -> None:
        self.state.hits.append(_Hit(self.f.member, getattr(node, "lineno", None), ref, op, denied))


def _unmangle(dotted: str) -> str:
    """`__torch__.a.___torch_mangle_3.B` -> `__torch__.a.B` (the importer resolves both alike)."""
    return _MANGLE.sub("", dotted)


def _chain(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _report(state: Analysis, ctx: "ScanContext") -> None:
    seen: set[tuple[str, str]] = set()
    count = 0
    for hit in state.hits:
        key = (hit.member, hit.ref)
        if key in seen:
            continue
        seen.add(key)
        count += 1
        if count > MAX_LISTED:
            break
        if hit.denied is not None:
            sev, why = hit.denied
            _at(ctx, hit.member, "MS-TS-001", line=hit.line, severity=Severity.parse(sev), callable=hit.op,
                op=hit.op, ref=hit.ref, why=why)
        else:
            what = f"operator {hit.op}" if hit.op else "name"
            _at(ctx, hit.member, "MS-TS-002", line=hit.line, callable=hit.op or hit.ref, ref=hit.ref, what=what)


def _at(ctx: "ScanContext", member: str, rule: str, **kw: Any) -> None:
    """A finding located at a code member of the archive."""
    ctx.members.append(member)
    try:
        ctx.add(rule, **kw)
    finally:
        ctx.members.pop()
