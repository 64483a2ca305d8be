"""Python source: Hugging Face remote code (auto_map targets) and dataset loading scripts.

Loaders pick code files by name (`modeling_x.py`, `<dataset>.py`), so this module accepts `.py`
names (and Python shebangs) and analyses them with `ast` only: nothing is imported or run.

What a behaviour weighs depends on whether a loader runs the file on load:
- whether a loader runs the file (auto_map & co., a dataset loading script: a `datasets` builder
  subclass runs on `load_dataset()`) is only known once the whole repo is scanned, so behaviours
  are recorded as `MS-PY-100` observations and `code_review` promotes them (`promote`) to threats
  at their "loaded" severity (data/python_dangerous.toml) for the files loaders reach, which are
  unreviewed code (MS-PY-020) unless the policy lists their hash;
- malicious shapes (decode-then-exec, reverse shells, exfiltration hosts, persistence writes,
  credential theft) are threats wherever the file is.
"""
from __future__ import annotations

import ast
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import urlsplit

from ..budgets import FormatError
from ..findings import Artefact, Finding, Kind, Severity
from .. import datafiles

if TYPE_CHECKING:
    from ..blob import Blob
    from ..context import ScanContext
    from ..rules import RuleTable


NAME = "python_source"
MAX_SOURCE = 8 << 20  # bytes; real modeling files are < 1 MB
MAX_FINDINGS = 200  # per file; the rest is counted
MAX_NESTED = 3  # exec of "..." strings analysed recursively
MAX_LISTED = 100  # imports / urls / classes kept in properties
OBSERVATION = "MS-PY-100"
DATASET_SCRIPT = "MS-PY-010"
BUILDER_BASES = ("GeneratorBasedBuilder", "ArrowBasedBuilder", "DatasetBuilder", "BeamBasedBuilder")
_ALIASES = {"nt": "os", "posix": "os", "posixpath": "os.path", "ntpath": "os.path", "_pickle": "pickle",
            "cPickle": "pickle", "__builtin__": "builtins", "__builtins__": "builtins",
            "commands": "subprocess", "np": "numpy"}
_BUILTIN_NAMES = {"exec", "eval", "compile", "__import__", "getattr", "open", "globals", "vars", "chr",
                  "bytes", "bytearray", "setattr", "locals", "isinstance", "issubclass", "dict", "str", "repr"}
_DECODERS = {"base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.b85decode",
             "base64.a85decode", "base64.decodebytes", "base64.decodestring", "base64.urlsafe_b64decode",
             "base64.standard_b64decode", "binascii.a2b_base64", "binascii.unhexlify", "binascii.a2b_hex",
             "codecs.decode", "zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress",
             "bytes.fromhex", "bytearray.fromhex", "builtins.chr", "marshal.loads"}
_SINKS = {"builtins.exec", "builtins.eval", "builtins.compile", "marshal.loads", "pickle.loads",
          "types.FunctionType", "types.CodeType", "os.system", "os.popen", "subprocess.run",
          "subprocess.Popen", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
          "subprocess.getoutput", "subprocess.getstatusoutput", "builtins.__import__",
          "importlib.import_module", "dill.loads", "cloudpickle.loads"}
_DANGEROUS_MODULES = {"os", "subprocess", "builtins", "sys", "socket", "ctypes", "importlib", "pickle",
                      "marshal", "shutil", "pty", "posix", "nt", "runpy", "code", "types"}
_IMPORTERS = {"builtins.__import__", "importlib.import_module", "importlib.__import__"}
_URL_RE = re.compile(r"\b(?:https?|ftp|wss?|tcp)://[^\s'\"<>]+", re.I)
_IP_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_WRITE_PATH_METHODS = {"write_text", "write_bytes", "touch", "symlink_to", "hardlink_to", "rename",
                       "replace", "chmod", "unlink"}


@dataclass(frozen=True)
class Entry:
    """One row of data/python_dangerous.toml."""

    name: str
    category: str
    severity: Severity
    standalone: Severity
    why: str
    module: bool = False
    when_kw: str | None = None
    when_value: Any = None
    unless_kw: str | None = None
    safe_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """The dangerous-Python table, loaded once."""

    entries: dict[str, Entry]
    categories: dict[str, dict[str, str]]
    command_tokens: tuple[str, ...]
    install_tokens: tuple[str, ...]
    exfil_hosts: tuple[str, ...]
    sensitive_paths: tuple[str, ...]
    secret_segments: frozenset[str]
    secret_pairs: tuple[str, ...]
    secret_prefixes: tuple[str, ...]
    allow: frozenset[str]

    def match(self, dotted: str | None) -> Entry | None:
        """The entry for a resolved dotted name (exact callable, or any attribute of a module entry)."""
        if not dotted:
            return None
        parts = dotted.split(".")
        if any(".".join(parts[:i]) in self.allow for i in range(len(parts), 0, -1)):
            return None
        if dotted in self.entries:
            return self.entries[dotted]
        for i in range(len(parts) - 1, 0, -1):
            entry = self.entries.get(".".join(parts[:i]))
            if entry and entry.module:
                return entry
        return None

    def is_secret_env(self, key: str) -> bool:
        """True for environment variable names that hold secrets (HF_TOKEN, AWS_SECRET_ACCESS_KEY...)."""
        up = key.upper()
        return bool(set(up.split("_")) & self.secret_segments) or any(p in up for p in self.secret_pairs) \
            or up.startswith(self.secret_prefixes)

    def exfil(self, host: str, path: str) -> bool:
        """True for URLs of services used to receive stolen data (host suffix + optional path prefix)."""
        for item in self.exfil_hosts:
            h, _, p = item.partition("/")
            if (host == h or host.endswith("." + h)) and path.lstrip("/").startswith(p):
                return True
        return False

@functools.lru_cache(maxsize=1)
def load_table() -> Table:
    """Parse data/python_dangerous.toml."""
    raw = datafiles.load("python_dangerous.toml")
    entries = {}
    for row in raw["entry"]:
        entries[row["name"]] = Entry(
            name=row["name"], category=row["category"], severity=Severity.parse(row["severity"]),
            standalone=Severity.parse(row.get("standalone", "low")), why=row["why"],
            module=row.get("kind") == "module", when_kw=row.get("when_kw"), when_value=row.get("when_value"),
            unless_kw=row.get("unless_kw"), safe_values=tuple(row.get("safe_values", ())))
    sus = raw["suspicious"]
    return Table(entries=entries, categories=raw["category"],
                 command_tokens=tuple(sus["command_tokens"]), install_tokens=tuple(sus["install_tokens"]),
                 exfil_hosts=tuple(sus["exfil_hosts"]), sensitive_paths=tuple(sus["sensitive_paths"]),
                 secret_segments=frozenset(sus["secret_env_segments"]), secret_pairs=tuple(sus["secret_env_pairs"]),
                 secret_prefixes=tuple(sus["secret_env_prefixes"]), allow=frozenset(raw["allow"]["names"]))



# ---------------------------------------------------------------------------------------------
# format-module interface

def sniff(head: bytes, blob: "Blob", name: str) -> bool:
    """Python source: a `.py` name (loaders choose code by name) or a Python shebang."""
    lower = name.lower()
    if lower.endswith((".py", ".pyw")):
        return True
    if head.startswith(b"#!"):
        first = head.split(b"\n", 1)[0]
        return b"python" in first
    return False


def analyse(blob: "Blob", ctx: "ScanContext") -> None:
    """Parse with `ast` under a size cap and report behaviours (see the module docstring)."""
    if blob.size > MAX_SOURCE:
        raise FormatError(f"{blob.size} bytes is over the {MAX_SOURCE}-byte cap for Python source",
                          rule_id="MS-PY-015")
    data = blob.read_at(0, blob.size)
    try:
        tree = ast.parse(data, filename=ctx.artefact.path)
    except SyntaxError as exc:
        raise FormatError(f"syntax error line {exc.lineno}: {exc.msg}", rule_id="MS-PY-014") from None
    except ValueError as exc:  # null bytes, bad encoding declaration
        raise FormatError(f"not Python source: {exc}", rule_id="MS-PY-014") from None
    ctx.check_time()
    analyser = Analyser(load_table(), ctx)
    analyser.run(tree)
    builders = _builder_classes(analyser.nodes)
    role = "dataset_script" if builders else "module"
    props = {
        "role": role,
        "lines": data.count(b"\n") + 1,
        "imports": sorted(analyser.imports)[:MAX_LISTED],
        "relative_imports": sorted(_relative_imports(data))[:MAX_LISTED],
        "classes": [n.name for n in tree.body if isinstance(n, ast.ClassDef)][:MAX_LISTED],
        "urls": analyser.urls[:MAX_LISTED],
    }
    if builders:
        props["dataset_builders"] = builders
    analyser.emit(loaded=False)  # repo_checks promotes what a loader reaches (code_review)
    ctx.artefact.properties[NAME] = props


# ---------------------------------------------------------------------------------------------
# promotion (also used by repo_checks once it knows a loader runs the file)

def promote(artefact: Artefact, rules: "RuleTable", reached_by: str) -> Severity | None:
    """Turn the file's MS-PY-100 observations into threats at their loaded severity.

    Returns the highest active threat severity of the file afterwards (None if none).
    """
    out: list[Finding] = []
    for f in artefact.findings:
        if f.rule_id == OBSERVATION and "behaviour_rule" in f.evidence:
            ev = {k: v for k, v in f.evidence.items() if k not in ("behaviour_rule", "loaded_severity")}
            ev["reached_by"] = reached_by
            new = rules.finding(f.evidence["behaviour_rule"], f.location,
                                severity=Severity.parse(f.evidence["loaded_severity"]),
                                callable=f.callable, args=f.args, **ev)
            new.suppressed = f.suppressed
            out.append(new)
        else:
            out.append(f)
    artefact.findings[:] = out
    sev = [f.severity for f in out if f.kind is Kind.THREAT and f.active and f.rule_id != DATASET_SCRIPT]
    return max(sev) if sev else None


def mark_dataset_script(artefact: Artefact, rules: "RuleTable", builder: str, line: int | None) -> None:
    """Add MS-PY-010 to a dataset loading script, at the highest severity its code reaches."""
    if any(f.rule_id == DATASET_SCRIPT for f in artefact.findings):
        return
    worst = promote(artefact, rules, "datasets.load_dataset")
    sev = max(Severity.MEDIUM, worst) if worst is not None else Severity.MEDIUM
    detail = f"; its code reaches {sev} findings" if sev > Severity.MEDIUM else ""
    from ..findings import Location
    artefact.findings.append(rules.finding(DATASET_SCRIPT, Location(path=artefact.path, line=line),
                                           severity=sev, builder=builder, detail=detail))


# ---------------------------------------------------------------------------------------------
# the analysis

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

    def _alias_and_taint(self, node: ast.AST) -> None:
        value = node.value if not isinstance(node, ast.AnnAssign) else node.value
        if value is None:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not names:
            return
        resolved = self.resolve(value)
        if resolved and (resolved.split(".")[0] in _DANGEROUS_MODULES or self.table.match(resolved)):
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
            if node.id in self.aliases:
                return self.aliases[node.id]
            for mod in self.star:
                cand = f"{mod}.{node.id}"
                if self.table.match(cand):
                    return cand
            if node.id in _BUILTIN_NAMES and node.id not in self._local:
                return f"builtins.{node.id}"
            if node.id == "__builtins__" and node.id not in self._local:
                return "builtins"
            return None
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
            func = self.resolve(node.func, _depth + 1)
            if func in _IMPORTERS and node.args:
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
        if isinstance(node, ast.Subscript):
            key = _fold(node.slice)
            base = self.resolve(node.value, _depth + 1)
            if base == "sys.modules" and isinstance(key, str):
                return _norm(key)
            if base in ("builtins", "builtins.__dict__") and isinstance(key, str):
                return _norm("builtins" if key == "__builtins__" else f"builtins.{key}")
            if base and isinstance(key, str) and key.isidentifier() and base.split(".")[0] in _DANGEROUS_MODULES:
                return _norm(f"{base}.{key}")  # vars(os)["system"], os.__dict__["system"]
            return None
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
        name = self.resolve(node.func)
        args = [_fold(a) for a in node.args][:8]
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        line = self._line(node)
        if name in ("builtins.exec", "builtins.eval", "builtins.compile") or name in _SINKS:
            dec = next((self._decoded(a) for a in node.args if self._decoded(a)), None)
            if dec:
                self._cover(node.func)
                self._add("MS-PY-003", Severity.CRITICAL, None, line, name, "runs decoded data",
                          "executes obfuscated code", args, extra={"decoder": dec})
                return
        if name in ("builtins.exec", "builtins.eval", "builtins.compile") and node.args:
            src = _fold(node.args[0])
            if isinstance(src, (str, bytes)) and self.depth < MAX_NESTED:
                self._nested(src, line or 0)
        if name in _IMPORTERS:
            self._cover(node.func)
            if node.args and not isinstance(_fold(node.args[0]), str):
                self._entry_hit("MS-PY-002", "dynamic_code", Severity.HIGH, Severity.LOW, line, name,
                                "imports a module whose name is computed at run time", args)
            return
        if name == "builtins.getattr" and len(node.args) >= 2:
            base = self.resolve(node.args[0])
            if base and base.split(".")[0] in _DANGEROUS_MODULES and not isinstance(_fold(node.args[1]), str):
                self._cover(node.func)
                self._add("MS-PY-012", Severity.HIGH, Severity.LOW, line, base,
                          "attribute name computed at run time", "looks up a computed attribute", args)
                return
        if name in ("builtins.open", "io.open", "codecs.open", "os.open"):
            self._open(node, name, line)
            return
        if isinstance(node.func, ast.Attribute) and node.func.attr in _WRITE_PATH_METHODS:
            path = _fold_path(node.func.value, self)
            if isinstance(path, str):
                self._path_write(path, f"Path.{node.func.attr}", line)
        if name in ("os.getenv", "os.environ.get", "os.getenvb"):
            self._env_read(node.args[0] if node.args else None, name, line)
            return
        if name in ("os.environ.copy", "os.environ.items", "os.environ.values") or (
                name in ("builtins.dict", "json.dumps", "builtins.str", "builtins.repr") and node.args
                and self.resolve(node.args[0]) == "os.environ"):
            self._add("MS-PY-009", Severity.MEDIUM, Severity.INFO, line, "os.environ",
                      "collects the whole environment, secrets included", "reads credentials", None)
            return
        entry = self.table.match(name)
        if entry is None:
            return
        if entry.when_kw is not None:
            value = _fold(kwargs[entry.when_kw]) if entry.when_kw in kwargs else _MISSING
            if value != entry.when_value:
                return
        if entry.unless_kw is not None and entry.unless_kw in kwargs:
            loader = self.resolve(kwargs[entry.unless_kw]) or _dotted(kwargs[entry.unless_kw])
            if loader and any(loader.endswith(s.split(".")[-1]) for s in entry.safe_values):
                return
        self._cover(node.func)
        rule = self.table.categories[entry.category]["rule"]
        detail = ""
        if entry.category in ("process", "install") or name in ("os.system", "os.popen"):
            command = _command_text(args, kwargs)
            if command:
                low = command.lower()
                detail = f" with command {command[:200]!r}"
                if any(t in low for t in self.table.install_tokens):
                    self._add("MS-PY-011", Severity.HIGH, Severity.LOW, line, name,
                              "installs packages from an index at load time",
                              self.table.categories["install"]["what"], args, detail)
                    return
                if any(t in low for t in self.table.command_tokens):
                    self._add(rule, Severity.CRITICAL, None, line, name, entry.why + "; the command downloads, "
                              "opens a shell or touches credentials", self.table.categories[entry.category]["what"],
                              args, detail)
                    return
        if entry.category == "network":
            for value in _strings(args) + [s for v in kwargs.values() for s in _strings([_fold(v)])]:
                self._check_url_text(value, line, in_call=name)
        self._add(rule, entry.severity, entry.standalone, line, name, entry.why,
                  self.table.categories[entry.category]["what"], args, detail)

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
            self._add("MS-PY-012", Severity.HIGH, Severity.LOW, self._line(node), "builtins",
                      "builtins looked up by a computed name", "looks up a computed attribute", None)

    def _string(self, node: ast.Constant) -> None:
        if id(node) in self._docstrings:
            return
        text: str = node.value
        for url in _URL_RE.findall(text)[:20]:
            if url not in self.urls and len(self.urls) < MAX_LISTED:
                self.urls.append(url)
        self._check_url_text(text, self._line(node), in_call=None)

    def _address_tuple(self, node: ast.Tuple) -> None:
        if len(node.elts) == 2:
            host, port = _fold(node.elts[0]), _fold(node.elts[1])
            if isinstance(host, str) and isinstance(port, int) and _public_ip(host):
                self._add("MS-PY-008", Severity.HIGH, None, self._line(node), "socket address",
                          "hard-coded address", "contains", [host, port],
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
                self._add("MS-PY-008", Severity.HIGH, Severity.MEDIUM if not in_call else None, line, url,
                          "hard-coded IP address", "contains", [url],
                          extra={"kind_of": "a URL with a hard-coded IP address", "value": url}, detail=where)
            elif self.table.exfil(host, path):
                self._add("MS-PY-008", Severity.HIGH, None, line, url, "exfiltration endpoint", "contains", [url],
                          extra={"kind_of": "a URL of a service used to receive stolen data", "value": url},
                          detail=where)

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
            self._add("MS-PY-009", Severity.HIGH, None, line, name, f"reads {path!r}", "reads credentials",
                      [path])

    def _path_write(self, path: str, name: str, line: int | None) -> None:
        if self._sensitive(path):
            self._add("MS-PY-007", Severity.CRITICAL, None, line, name,
                      f"writes {path!r}: persistence or credential tampering", "modifies files", [path])
        elif path.startswith(("/", "~", "\\")) or ".." in path.replace("\\", "/").split("/") or re.match(r"^[A-Za-z]:", path):
            self._add("MS-PY-007", Severity.HIGH, Severity.LOW, line, name,
                      f"writes {path!r}, outside the model cache", "modifies files outside the model cache", [path])

    def _sensitive(self, path: str) -> bool:
        low = path.lower().replace("\\\\", "\\")
        return any(s in low for s in self.table.sensitive_paths)

    def _env_read(self, key_node: ast.AST | None, name: str, line: int | None) -> None:
        key = _fold(key_node) if key_node is not None else None
        if isinstance(key, str) and self.table.is_secret_env(key):
            self._add("MS-PY-009", Severity.MEDIUM, Severity.INFO, line, name, f"reads the secret {key}",
                      "reads credentials", [key], extra={"secret": key})

    def _decoded(self, node: ast.AST) -> str | None:
        """The decoder an expression's value comes from (base64.b64decode...), or None."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                name = self.resolve(sub.func)
                if name in _DECODERS:
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
            self._add("MS-PY-013", Severity.CRITICAL, None, net.line, net.callable, "", "", None,
                      extra={"network": net.callable, "other": f"{other.what} ({other.callable}, line {other.line})"})

    # -- helpers -------------------------------------------------------------------------------------
    def _entry_hit(self, rule: str, category: str, sev: Severity, standalone: Severity, line: int | None,
                   name: str, why: str, args: list[Any] | None) -> None:
        self._add(rule, sev, standalone, line, name, why, self.table.categories[category]["what"], args)

    def _add(self, rule: str, sev: Severity, standalone: Severity | None, line: int | None, name: str,
             why: str, what: str, args: list[Any] | None, detail: str = "", extra: dict | None = None) -> None:
        self.hits.append(Hit(rule=rule, entry_sev=sev, standalone=standalone, line=line, callable=name,
                             why=why, what=what, args=_jsonable(args), detail=detail, extra=extra or {}))


# ---------------------------------------------------------------------------------------------
# small pure helpers

_MISSING = object()


def _norm(name: str) -> str:
    head, _, rest = name.partition(".")
    head = _ALIASES.get(head, head)
    return f"{head}.{rest}" if rest else head


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _fold(node: ast.AST | None, depth: int = 0) -> Any:
    """Constant-fold simple expressions (literals, +, %-free f-strings, "".join of constants)."""
    if node is None or depth > 20:
        return _MISSING
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [_fold(e, depth + 1) for e in node.elts[:64]]
        return _MISSING if any(v is _MISSING for v in vals) else vals
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _fold(node.left, depth + 1), _fold(node.right, depth + 1)
        if isinstance(a, str) and isinstance(b, str) or isinstance(a, bytes) and isinstance(b, bytes):
            return a + b
        return _MISSING
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                out.append(str(v.value))
            elif isinstance(v, ast.FormattedValue):
                inner = _fold(v.value, depth + 1)
                out.append(str(inner) if isinstance(inner, (str, int)) else "{…}")
        return "".join(out)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str) and node.args:
        parts = _fold(node.args[0], depth + 1)
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return node.func.value.value.join(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _fold(node.operand, depth + 1)
        return -v if isinstance(v, (int, float)) else _MISSING
    return _MISSING


def _fold_path(node: ast.AST, an: Analyser, depth: int = 0) -> str | None:
    """Fold path expressions: constants, os.path.join, expanduser, Path(...), Path.home() / "x"."""
    if depth > 20:
        return None
    v = _fold(node)
    if isinstance(v, str):
        return v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        a, b = _fold_path(node.left, an, depth + 1), _fold_path(node.right, an, depth + 1)
        return f"{a.rstrip('/')}/{b}" if a is not None and b is not None else None
    if isinstance(node, ast.Call):
        name = an.resolve(node.func) or _dotted(node.func) or ""
        tail = name.split(".")[-1]
        if tail == "home" and not node.args:
            return "~"
        if tail in ("expanduser", "expandvars", "abspath", "normpath", "realpath", "Path", "PurePath",
                    "PosixPath", "WindowsPath", "fspath", "str") and node.args:
            return _fold_path(node.args[0], an, depth + 1)
        if tail in ("join", "joinpath") and node.args:
            parts = [_fold_path(a, an, depth + 1) for a in node.args]
            if tail == "joinpath" and isinstance(node.func, ast.Attribute):
                parts = [_fold_path(node.func.value, an, depth + 1)] + parts
            if all(p is not None for p in parts):
                return "/".join(p.rstrip("/") if i < len(parts) - 1 else p for i, p in enumerate(parts))
    return None


def _strings(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out += _strings(v)
    return out


def _command_text(args: list[Any], kwargs: dict[str, ast.AST]) -> str:
    first: Any = args[0] if args else (_fold(kwargs["args"]) if "args" in kwargs else None)
    if isinstance(first, str):
        return first
    if isinstance(first, list):
        return " ".join(str(p) for p in first if isinstance(p, (str, int)))
    return " ".join(_strings(args))


def _public_ip(host: str) -> bool:
    if not _IP_RE.match(host or ""):
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    # private and link-local addresses count: 169.254.169.254 is the cloud credential endpoint
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast)


def _jsonable(values: list[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    out = []
    for v in values:
        if v is _MISSING:
            out.append("<expr>")
        elif isinstance(v, bytes):
            out.append(v[:200].decode("latin-1"))
        elif isinstance(v, str):
            out.append(v[:500])
        elif isinstance(v, (int, float, bool)) or v is None:
            out.append(v)
        elif isinstance(v, list):
            out.append(_jsonable(v))
        else:
            out.append(repr(v)[:200])
    return out


def _walk(tree: ast.AST, parents: dict[int, ast.AST]) -> list[ast.AST]:
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


def _relative_imports(data: bytes) -> set[str]:
    """Relative imports exactly as transformers finds them (a regex over the text, not the AST)."""
    text = data.decode("utf-8", "replace")
    found = set(re.findall(r"^\s*import\s+\.(\S+)\s*$", text, flags=re.MULTILINE))
    found |= set(re.findall(r"^\s*from\s+\.(\S+)\s+import", text, flags=re.MULTILINE))
    return found


def _builder_classes(nodes: list[ast.AST]) -> list[str]:
    """Classes deriving from a `datasets` builder (by base-class name: datasets.X or an imported X)."""
    out = []
    for node in nodes:
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = _dotted(base) or ""
                if name.split(".")[-1] in BUILDER_BASES:
                    out.append(node.name)
                    break
    return out[:MAX_LISTED]
