"""Pure helpers over the `ast` tree: dotted names, constant folding, path folding, JSON-able values."""
from __future__ import annotations

import ast
import ipaddress
import re
from typing import Any, Iterable, Mapping, Protocol

from ...policy import module_aliases

_IP_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


class Resolver(Protocol):
    """What path folding needs from the analyser: the dotted name an expression refers to."""

    def resolve(self, node: ast.AST, _depth: int = 0) -> str | None: ...


MISSING = object()


def norm(name: str) -> str:
    """`name` with its first component as the module it stands for (`np.load` -> `numpy.load`)."""
    head, _, rest = name.partition(".")
    head = module_aliases(python_source=True).get(head, head)
    return f"{head}.{rest}" if rest else head


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def fold(node: ast.AST | None, depth: int = 0) -> Any:
    """Constant-fold simple expressions (literals, +, %-free f-strings, "".join of constants)."""
    if node is None or depth > 20:
        return MISSING
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [fold(e, depth + 1) for e in node.elts[:64]]
        return MISSING if any(v is MISSING for v in vals) else vals
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = fold(node.left, depth + 1), fold(node.right, depth + 1)
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, bytes) and isinstance(b, bytes):
            return a + b
        return MISSING
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            elif isinstance(v, ast.FormattedValue):
                inner = fold(v.value, depth + 1)
                out.append(str(inner) if isinstance(inner, (str, int)) else "{…}")
        return "".join(out)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str) and node.args:
        parts = fold(node.args[0], depth + 1)
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return node.func.value.value.join(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = fold(node.operand, depth + 1)
        return -v if isinstance(v, (int, float)) else MISSING
    return MISSING


def fold_path(node: ast.AST, an: Resolver, depth: int = 0) -> str | None:
    """Fold path expressions: constants, os.path.join, expanduser, Path(...), Path.home() / "x"."""
    if depth > 20:
        return None
    v = fold(node)
    if isinstance(v, str):
        return v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        a, b = fold_path(node.left, an, depth + 1), fold_path(node.right, an, depth + 1)
        return f"{a.rstrip('/')}/{b}" if a is not None and b is not None else None
    if isinstance(node, ast.Call):
        name = an.resolve(node.func) or dotted(node.func) or ""
        tail = name.split(".")[-1]
        if tail == "home" and not node.args:
            return "~"
        if tail in ("expanduser", "expandvars", "abspath", "normpath", "realpath", "Path", "PurePath",
                    "PosixPath", "WindowsPath", "fspath", "str") and node.args:
            return fold_path(node.args[0], an, depth + 1)
        if tail in ("join", "joinpath") and node.args:
            parts = [fold_path(a, an, depth + 1) for a in node.args]
            if tail == "joinpath" and isinstance(node.func, ast.Attribute):
                parts = [fold_path(node.func.value, an, depth + 1)] + parts
            known = [p for p in parts if p is not None]
            if len(known) == len(parts):
                return "/".join(p.rstrip("/") if i < len(known) - 1 else p for i, p in enumerate(known))
    return None


def strings(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out += strings(v)
    return out


def command_text(args: list[Any], kwargs: Mapping[str, ast.AST]) -> str:
    first: Any = args[0] if args else (fold(kwargs["args"]) if "args" in kwargs else None)
    if isinstance(first, str):
        return first
    if isinstance(first, list):
        return " ".join(str(p) for p in first if isinstance(p, (str, int)))
    return " ".join(strings(args))


def public_ip(host: str) -> bool:
    if not _IP_RE.match(host or ""):
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    # private and link-local addresses count: 169.254.169.254 is the cloud credential endpoint
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast)


def jsonable(values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        if v is MISSING:
            out.append("<expr>")
        elif isinstance(v, bytes):
            out.append(v[:200].decode("latin-1"))
        elif isinstance(v, str):
            out.append(v[:500])
        elif isinstance(v, (int, float, bool)) or v is None:
            out.append(v)
        elif isinstance(v, list):
            out.append(jsonable(v))
        else:
            out.append(repr(v)[:200])
    return out


def walk(tree: ast.AST, parents: dict[int, ast.AST]) -> list[ast.AST]:
    """Every node, breadth-first (parents before children), recording each node's parent."""
    out = [tree]
    i = 0
    while i < len(out):
        node = out[i]
        i += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                parents[id(value)] = node
                out.append(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        parents[id(item)] = node
                        out.append(item)
    return out
