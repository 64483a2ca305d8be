"""The Python AST analyser: walks one module's tree (and strings it runs through exec/eval) and
collects behaviours as `Hit`s, then reports them as threats or `MS-PY-100` observations.

What a behaviour weighs depends on whether a loader runs the file on load (see `source.py`):
threats at their "loaded" severity when it does, observations otherwise (promoted later by
`promotion.promote`); malicious shapes are threats wherever the file is.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...findings import Severity
from .folding import MISSING as _MISSING
from .folding import command_text as _command_text
from .folding import dotted as _dotted
from .folding import fold as _fold
from .folding import fold_path as _fold_path
from .folding import jsonable as _jsonable
from .folding import norm as _norm
from .folding import public_ip as _public_ip
from .folding import strings as _strings
from .folding import walk as _walk
from .promotion import OBSERVATION
from .table import Entry, Table

if TYPE_CHECKING:
    from ...context import ScanContext

MAX_FINDINGS = 200  # per file; the rest is counted
MAX_NESTED = 3  # exec of "..." strings analysed recursively
MAX_LISTED = 100  # imports / urls / classes kept in properties
_URL_RE = re.compile(r"\b(?:https?|ftp|wss?|tcp)://[^\s'\"<>]+", re.I)


@dataclass(frozen=True)
class _Call:
    """One call site as the handlers see it: node, resolved name, folded arguments, keywords, line."""

    node: ast.Call
    name: str | None
    args: list[Any]
    kwargs: dict[str, ast.expr]
    line: int | None


@dataclass
class Hit:
    """One behaviour found in the source."""

    rule: str
    entry_sev: Severity  # severity when the file runs on load
    standalone: Severity | None  # None: a threat wherever the file is
    line: int | None
    callable: str
    why: str
    what: str
    args: list[Any] | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Analyser:
    """Walks one module's AST (and nested exec strings) and collects `Hit`s."""

    def __init__(self, table: Table, ctx: "ScanContext", depth: int = 0, line_base: int = 0) -> None:
        self.table, self.ctx, self.depth, self.line_base = table, ctx, depth, line_base
        self.names = table.names
        self.aliases: dict[str, str] = {}
        self.star: list[str] = []
        self.tainted: set[str] = set()
        self.imports: set[str] = set()
        self.urls: list[str] = []
        self.hits: list[Hit] = []
        self._covered: set[int] = set()
        self._docstrings: set[int] = set()
        self._local: set[str] = set()
        self._parents: dict[int, ast.AST] = {}

    # -- public ---------------------------------------------------------------------------------
    def run(self, tree: ast.AST) -> None:
        """Collect aliases, taint, then behaviours."""
        self.nodes = nodes = _walk(tree, self._parents)
        self._collect_imports(nodes)
        self._collect_docstrings(nodes)
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self._local.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self._local.add(node.id)
            elif isinstance(node, ast.arg):
                self._local.add(node.arg)
        assigns = [n for n in nodes if isinstance(n, (ast.Assign, ast.AnnAssign, ast.NamedExpr))]
        for _ in range(2):  # twice: order-independent aliasing / taint through one hop
            for node in assigns:
                self._alias_and_taint(node)
        for i, node in enumerate(nodes):
            if not i & 1023:
                self.ctx.check_time()
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
                self._reference(node)
            elif isinstance(node, ast.Subscript):
                self._subscript(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self._string(node)
            elif isinstance(node, ast.Tuple):
                self._address_tuple(node)
        self._combinations()

    def emit(self, loaded: bool) -> None:
        """Report the hits: threats when loaded (or malicious anywhere), else MS-PY-100 observations."""
        seen: set[tuple[str, str, int | None]] = set()
        count = 0
        for hit in sorted(self.hits, key=lambda h: h.line or 0):
            key = (hit.rule, hit.callable, hit.line)
            if key in seen:
                continue
            seen.add(key)
            count += 1
            if count > MAX_FINDINGS:
                continue
            ev = dict(hit.extra, what=hit.what, why=hit.why, detail=hit.detail)
            if hit.standalone is None or loaded:
                self.ctx.add(hit.rule, line=hit.line, severity=hit.entry_sev, callable=hit.callable,
                             args=hit.args, **ev)
            else:
                self.ctx.add(OBSERVATION, line=hit.line, severity=hit.standalone, callable=hit.callable,
                             args=hit.args, behaviour_rule=hit.rule, loaded_severity=str(hit.entry_sev),
                             what_cap=hit.what[:1].upper() + hit.what[1:], **ev)
        if count > MAX_FINDINGS:
            self.ctx.add(OBSERVATION, severity=Severity.INFO, callable="(more)", what="more behaviours",
                         what_cap="More behaviours", why=f"{count - MAX_FINDINGS} not listed", detail="")

    # -- collection passes --------------------------------------------------------------------
    def _collect_imports(self, nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    mod = _norm(a.name)
                    self.imports.add(mod.split(".")[0])
                    if a.asname:
                        self.aliases[a.asname] = mod
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = _norm(top)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = "." * node.level + (node.module or "")
                    for a in node.names:
                        self.aliases[a.asname or a.name] = f"{base}.{a.name}"
                    continue
                mod = _norm(node.module or "")
                self.imports.add(mod.split(".")[0])
                for a in node.names:
                    if a.name == "*":
                        self.star.append(mod)
                    else:
                        self.aliases[a.asname or a.name] = _norm(f"{mod}.{a.name}")

    def _collect_docstrings(self, nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                body = getattr(node, "body", [])
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    self._docstrings.add(id(body[0].value))

    def _alias_and_taint(self, node: ast.Assign | ast.AnnAssign | ast.NamedExpr) -> None:
        value = node.value if not isinstance(node, ast.AnnAssign) else node.value
        if value is None:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            return
        resolved = self.resolve(value)
        if resolved and (resolved.split(".")[0] in self.names.dangerous_modules or self.table.match(resolved)):
            for n in names:
                self.aliases.setdefault(n, resolved)
        if self._decoded(value):
            self.tainted.update(names)

    # -- name resolution --------------------------------------------------------------------------
    def resolve(self, node: ast.AST, _depth: int = 0) -> str | None:
        """Dotted name an expression refers to (`os.system`, `builtins.exec`), or None."""
        if _depth > 50:
            return None
        if isinstance(node, ast.Name):
            return self._resolve_name(node)
        if isinstance(node, ast.Attribute):
            if node.attr == "__globals__":
                return "builtins"  # a function's module namespace: ['__builtins__'], ['exec'] reach builtins
            base = self.resolve(node.value, _depth + 1)
            if node.attr == "__dict__" and base:
                return base  # vars(m) / m.__dict__ lookups are attribute lookups
            return _norm(f"{base}.{node.attr}") if base else None
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, _depth + 1) or self.resolve(node.orelse, _depth + 1)
        if isinstance(node, ast.BoolOp):
            return next((r for v in node.values if (r := self.resolve(v, _depth + 1))), None)
        if isinstance(node, ast.Call):
            return self._resolve_call(node, _depth)
        if isinstance(node, ast.Subscript):
            return self._resolve_subscript(node, _depth)
        return None

    def _resolve_name(self, node: ast.Name) -> str | None:
        if node.id in self.aliases:
            return self.aliases[node.id]
        for mod in self.star:
            cand = f"{mod}.{node.id}"
            if self.table.match(cand):
                return cand
        if node.id in self.names.builtins and node.id not in self._local:
            return f"builtins.{node.id}"
        if node.id == "__builtins__" and node.id not in self._local:
            return "builtins"
        return None

    def _resolve_call(self, node: ast.Call, _depth: int) -> str | None:
        """What a call returns when it is a lookup: __import__("os"), getattr(m, "x"), vars()..."""
        func = self.resolve(node.func, _depth + 1)
        if func in self.names.importers and node.args:
            name = _fold(node.args[0])
            return _norm(name) if isinstance(name, str) else None
        if func == "builtins.getattr" and len(node.args) >= 2:
            attr = _fold(node.args[1])
            base = self.resolve(node.args[0], _depth + 1)
            return _norm(f"{base}.{attr}") if base and isinstance(attr, str) else None
        if func in ("builtins.globals", "builtins.locals", "builtins.vars") and not node.args:
            return "builtins"
        if func == "builtins.vars" and len(node.args) == 1:
            return self.resolve(node.args[0], _depth + 1)
        return None

    def _resolve_subscript(self, node: ast.Subscript, _depth: int) -> str | None:
        """sys.modules["os"], builtins.__dict__["exec"], vars(os)["system"]."""
        key = _fold(node.slice)
        base = self.resolve(node.value, _depth + 1)
        if base == "sys.modules" and isinstance(key, str):
            return _norm(key)
        if base in ("builtins", "builtins.__dict__") and isinstance(key, str):
            return _norm("builtins" if key == "__builtins__" else f"builtins.{key}")
        if base and isinstance(key, str) and key.isidentifier() and base.split(".")[0] in self.names.dangerous_modules:
            return _norm(f"{base}.{key}")  # vars(os)["system"], os.__dict__["system"]
        return None

    # -- node handlers -------------------------------------------------------------------------------
    def _line(self, node: ast.AST) -> int | None:
        line = getattr(node, "lineno", None)
        return None if line is None else line + self.line_base

    def _cover(self, node: ast.AST) -> None:
        while isinstance(node, (ast.Attribute, ast.Name, ast.Call, ast.Subscript)):
            self._covered.add(id(node))
            node = node.value if isinstance(node, (ast.Attribute, ast.Subscript)) else \
                node.func if isinstance(node, ast.Call) else None  # type: ignore[assignment]

    def _call(self, node: ast.Call) -> None:
        call = _Call(node, self.resolve(node.func), [_fold(a) for a in node.args][:8],
                     {k.arg: k.value for k in node.keywords if k.arg}, self._line(node))
        if self._decoded_exec(call):
            return
        self._nested_exec(call)
        if self._dynamic_import(call) or self._computed_getattr(call):
            return
        if call.name in self.names.openers:
            self._open(node, call.name, call.line)
            return
        self._path_method_write(call)
        if self._environment(call):
            return
        self._table_call(call)

    def _decoded_exec(self, call: _Call) -> bool:
        """Decoded data (base64, hex, a reversed string...) handed to something that runs it."""
        name, node = call.name, call.node
        if name not in self.names.code_runners and name not in self.names.sinks:
            return False
        dec = next((self._decoded(a) for a in node.args if self._decoded(a)), None)
        if not dec:
            return False
        self._cover(node.func)
        self._shape("decoded_exec", call.line, name, "runs decoded data", call.args, extra={"decoder": dec})
        return True

    def _nested_exec(self, call: _Call) -> None:
        """A constant string run by exec/eval/compile is analysed as source (MAX_NESTED deep)."""
        if call.name in self.names.code_runners and call.node.args:
            src = _fold(call.node.args[0])
            if isinstance(src, (str, bytes)) and self.depth < MAX_NESTED:
                self._nested(src, call.line or 0)

    def _dynamic_import(self, call: _Call) -> bool:
        if call.name not in self.names.importers:
            return False
        self._cover(call.node.func)
        if call.node.args and not isinstance(_fold(call.node.args[0]), str):
            self._shape("computed_import", call.line, call.name,
                        "imports a module whose name is computed at run time", call.args)
        return True

    def _computed_getattr(self, call: _Call) -> bool:
        """getattr(os, <computed>): an attribute of a dangerous module chosen at run time."""
        node = call.node
        if call.name != "builtins.getattr" or len(node.args) < 2:
            return False
        base = self.resolve(node.args[0])
        if not base or base.split(".")[0] not in self.names.dangerous_modules or isinstance(_fold(node.args[1]), str):
            return False
        self._cover(node.func)
        self._shape("computed_attribute", call.line, base, "attribute name computed at run time", call.args)
        return True

    def _path_method_write(self, call: _Call) -> None:
        """Path(...).write_text(...) and the other pathlib writes, on a path we can fold."""
        func = call.node.func
        if isinstance(func, ast.Attribute) and func.attr in self.names.write_path_methods:
            path = _fold_path(func.value, self)
            if isinstance(path, str):
                self._path_write(path, f"Path.{func.attr}", call.line)

    def _environment(self, call: _Call) -> bool:
        """A secret read by name, or the whole environment collected."""
        name, node = call.name, call.node
        if name in self.names.env_getters:
            self._env_read(node.args[0] if node.args else None, name, call.line)
            return True
        if name in self.names.env_dumps or (
                name in self.names.env_wrappers and node.args and self.resolve(node.args[0]) == "os.environ"):
            self._shape("whole_environment", call.line, "os.environ",
                        "collects the whole environment, secrets included", None)
            return True
        return False

    def _table_call(self, call: _Call) -> None:
        """A call of a dangerous-table entry (subject to its keyword conditions)."""
        name, kwargs = call.name, call.kwargs
        entry = self.table.match(name)
        if entry is None or name is None or not self._entry_applies(entry, kwargs):
            return
        self._cover(call.node.func)
        category = self.table.categories[entry.category]
        detail = ""
        if entry.category in ("process", "install") or name in ("os.system", "os.popen"):
            command = _command_text(call.args, kwargs)
            if command:
                detail = f" with command {command[:200]!r}"
                if self._command_shape(command, entry, name, call, detail):
                    return
        if entry.category == "network":
            for value in _strings(call.args) + [s for v in kwargs.values() for s in _strings([_fold(v)])]:
                self._check_url_text(value, call.line, in_call=name)
        self._add(category["rule"], entry.severity, entry.standalone, call.line, name, entry.why, category["what"],
                  call.args, detail)

    def _entry_applies(self, entry: Entry, kwargs: dict[str, ast.expr]) -> bool:
        """when_kw: only with that constant value; unless_kw: not with one of the safe values."""
        if entry.when_kw is not None:
            value = _fold(kwargs[entry.when_kw]) if entry.when_kw in kwargs else _MISSING
            if value != entry.when_value:
                return False
        if entry.unless_kw is not None and entry.unless_kw in kwargs:
            loader = self.resolve(kwargs[entry.unless_kw]) or _dotted(kwargs[entry.unless_kw])
            if loader and any(loader.endswith(s.split(".")[-1]) for s in entry.safe_values):
                return False
        return True

    def _command_shape(self, command: str, entry: Entry, name: str, call: _Call, detail: str) -> bool:
        """A command that installs packages, or downloads / opens a shell / touches credentials."""
        low = command.lower()
        if any(t in low for t in self.table.install_tokens):
            self._shape("install_command", call.line, name, "installs packages from an index at load time",
                        call.args, detail)
            return True
        if any(t in low for t in self.table.command_tokens):
            self._shape("hostile_command", call.line, name, entry.why + "; the command downloads, "
                        "opens a shell or touches credentials", call.args, detail, category=entry.category)
            return True
        return False

    def _reference(self, node: ast.Attribute | ast.Name) -> None:
        if id(node) in self._covered:
            return
        name = self.resolve(node)
        entry = self.table.match(name)
        if entry is None or entry.when_kw or entry.unless_kw:
            if name == "os.environ" and isinstance(node, ast.Attribute):
                self._cover(node)
            return
        self._cover(node)
        if not self._value_use(node):
            return
        rule = self.table.categories[entry.category]["rule"]
        self._add(rule, entry.severity, entry.standalone, self._line(node), name or "", entry.why + " (referenced)",
                  self.table.categories[entry.category]["what"], None)

    def _value_use(self, node: ast.AST) -> bool:
        """A reference used as a value (assigned, passed, returned), not a type check or annotation."""
        parent = self._parents.get(id(node))
        if isinstance(parent, ast.Tuple):
            parent = self._parents.get(id(parent))
        if parent is None or isinstance(parent, (ast.ExceptHandler, ast.Compare, ast.arg, ast.Attribute)):
            return False
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and parent.returns is node:
            return False
        if isinstance(parent, ast.AnnAssign) and parent.annotation is node:
            return False
        if isinstance(parent, ast.Call) and self.resolve(parent.func) in ("builtins.isinstance", "builtins.issubclass"):
            return False
        return not isinstance(parent, (ast.Expr, ast.Subscript))

    def _subscript(self, node: ast.Subscript) -> None:
        base = self.resolve(node.value)
        if base == "os.environ" and isinstance(node.ctx, ast.Load):
            self._cover(node)
            self._env_read(node.slice, "os.environ[]", self._line(node))
        elif base == "builtins" and not isinstance(_fold(node.slice), str):
            self._cover(node)
            self._shape("computed_attribute", self._line(node), "builtins", "builtins looked up by a computed name",
                        None)

    def _string(self, node: ast.Constant) -> None:
        text = node.value
        if id(node) in self._docstrings or not isinstance(text, str):
            return
        for url in _URL_RE.findall(text)[:20]:
            if url not in self.urls and len(self.urls) < MAX_LISTED:
                self.urls.append(url)
        self._check_url_text(text, self._line(node), in_call=None)

    def _address_tuple(self, node: ast.Tuple) -> None:
        if len(node.elts) == 2:
            host, port = _fold(node.elts[0]), _fold(node.elts[1])
            if isinstance(host, str) and isinstance(port, int) and _public_ip(host):
                self._shape("socket_address", self._line(node), "socket address", "hard-coded address", [host, port],
                            extra={"kind_of": "the socket address", "value": f"{host}:{port}"})

    def _check_url_text(self, text: str, line: int | None, in_call: str | None) -> None:
        for url in _URL_RE.findall(text)[:20]:
            try:
                parts = urlsplit(url)
                host, path = (parts.hostname or "").lower(), parts.path
            except ValueError:
                continue
            where = f" (passed to {in_call})" if in_call else ""
            if _public_ip(host):
                self._shape("ip_url_called" if in_call else "ip_url", line, url, "hard-coded IP address", [url],
                            where, extra={"kind_of": "a URL with a hard-coded IP address", "value": url})
            elif self.table.exfil(host, path):
                self._shape("exfiltration_url", line, url, "exfiltration endpoint", [url], where,
                            extra={"kind_of": "a URL of a service used to receive stolen data", "value": url})

    def _open(self, node: ast.Call, name: str, line: int | None) -> None:
        path = _fold_path(node.args[0], self) if node.args else None
        mode = _fold(node.args[1]) if len(node.args) > 1 else None
        for k in node.keywords:
            if k.arg in ("mode", "flags"):
                mode = _fold(k.value)
        if not isinstance(path, str):
            return
        writing = isinstance(mode, str) and any(c in mode for c in "wax+") or \
            (name == "os.open" and mode is not None and mode != 0)
        if writing:
            self._path_write(path, name, line)
        elif self._sensitive(path):
            self._shape("credential_read", line, name, f"reads {path!r}", [path])

    def _path_write(self, path: str, name: str, line: int | None) -> None:
        if self._sensitive(path):
            self._shape("sensitive_write", line, name, f"writes {path!r}: persistence or credential tampering",
                        [path])
        elif path.startswith(("/", "~", "\\")) or ".." in path.replace("\\", "/").split("/") \
                or re.match(r"^[A-Za-z]:", path):
            self._shape("outside_write", line, name, f"writes {path!r}, outside the model cache", [path])

    def _sensitive(self, path: str) -> bool:
        low = path.lower().replace("\\\\", "\\")
        return any(s in low for s in self.table.sensitive_paths)

    def _env_read(self, key_node: ast.AST | None, name: str, line: int | None) -> None:
        key = _fold(key_node) if key_node is not None else None
        if isinstance(key, str) and self.table.is_secret_env(key):
            self._shape("secret_env", line, name, f"reads the secret {key}", [key], extra={"secret": key})

    def _decoded(self, node: ast.AST) -> str | None:
        """The decoder an expression's value comes from (base64.b64decode...), or None."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = self.resolve(sub.func)
                if name in self.names.decoders:
                    return name
                if isinstance(sub.func, ast.Attribute) and sub.func.attr in ("fromhex", "decompress", "b64decode"):
                    return f"{_dotted(sub.func) or sub.func.attr}"
            elif isinstance(sub, ast.Name) and sub.id in self.tainted:
                return f"{sub.id} (decoded data)"
            elif isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Slice):
                step = _fold(sub.slice.step) if sub.slice.step is not None else None
                if step == -1:
                    return "a reversed string"
        return None

    def _nested(self, src: str | bytes, line: int) -> None:
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            return
        inner = Analyser(self.table, self.ctx, self.depth + 1, line - 1)
        inner.run(tree)
        for hit in inner.hits:
            hit.detail += " (inside a string run by exec/eval)"
        self.hits.extend(inner.hits)

    def _combinations(self) -> None:
        net = next((h for h in self.hits if h.callable.startswith("socket")), None)
        if net is None:
            return
        other = next((h for h in self.hits if h.rule in ("MS-PY-001", "MS-PY-002", "MS-PY-003")), None)
        if other is not None:
            self._shape("network_and_exec", net.line, net.callable, "", None,
                        extra={"network": net.callable, "other": f"{other.what} ({other.callable}, line {other.line})"})

    # -- helpers -------------------------------------------------------------------------------------
    def _shape(self, key: str, line: int | None, name: str, why: str, args: list[Any] | None, detail: str = "",
               extra: dict[str, Any] | None = None, *, category: str | None = None) -> None:
        """A behaviour of data/python_dangerous.toml [behaviour.<key>] (rule and severities from there)."""
        shape = self.table.behaviours[key]
        category = category or shape.category
        cat = self.table.categories[category] if category else {}
        rule = shape.rule or cat["rule"]
        what = shape.what if shape.what is not None else cat["what"]
        self._add(rule, shape.severity, shape.standalone, line, name, why, what, args, detail, extra)

    def _add(self, rule: str, sev: Severity, standalone: Severity | None, line: int | None, name: str,
             why: str, what: str, args: list[Any] | None, detail: str = "", extra: dict | None = None) -> None:
        self.hits.append(Hit(rule=rule, entry_sev=sev, standalone=standalone, line=line, callable=name,
                             why=why, what=what, args=_jsonable(args), detail=detail, extra=extra or {}))
