"""Jinja2 chat templates: server-side template injection found on the jinja2 AST, never rendered.

`analyse_template` is the shared entry point (GGUF `tokenizer.chat_template*`, HF
`tokenizer_config.json` / `chat_template.json`, safetensors metadata, standalone `*.jinja` files
through `formats/template_file.py`). The template is parsed with jinja2's own parser (the one the
renderers use) and the tree is walked for the ways a
template escapes into Python (CVE-2024-34359): underscore attributes, attribute names built at
render time (constant-folded where possible to name them), attributes of the built-in globals,
introspection attributes, `str.format` field traversal and loader statements.
"""
from __future__ import annotations

import functools
import hashlib
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension

from .. import datafiles
from ..findings import TemplateSummary

if TYPE_CHECKING:
    from ..context import ScanContext

MAX_TEMPLATE_CHARS = 4 << 20  # far above any real chat template (the largest are ~30 KB)
_CASE_FILTERS: dict[str, Callable[[str], str]] = {"lower": str.lower, "upper": str.upper, "title": str.title,
                                                  "capitalize": str.capitalize, "trim": str.strip}
_FOLD_LIMIT = 4096  # longest string constant folding will build (a `'_' * 10**9` must not allocate)
_UNKNOWN = object()


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    raw = datafiles.load("template_rules.toml")
    return {k: frozenset(v) if isinstance(v, list) else v for k, v in raw.items()}


class _Generation(Extension):
    """Parse-only `{% generation %}...{% endgeneration %}` (transformers' AssistantTracker tag)."""

    tags = {"generation"}

    def parse(self, parser):  # type: ignore[no-untyped-def]
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@functools.lru_cache(maxsize=1)
def _parser_env() -> jinja2.Environment:
    # Only used for .parse(): the same lexer/parser the renderers use, with the extensions
    # transformers enables (loopcontrols, generation) plus `do`, so more templates are analysable.
    return jinja2.Environment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation])


@dataclass
class _Hit:
    rule: str
    line: int
    evidence: dict[str, Any] = field(default_factory=dict)


class _Analyser:
    """One pass over a template tree; collects hits, folds string constants through `{% set %}`."""

    def __init__(self, tree: nodes.Template) -> None:
        self.tree = tree
        self.data = _data()
        self.hits: list[_Hit] = []
        self.assigned: dict[str, list[Any]] = {}  # name -> folded values of its assignments
        self.local_names: set[str] = set()
        self.sources: dict[str, list[nodes.Node]] = {}  # name -> expressions it was assigned / iterated from
        self._visiting: set[str] = set()
        self._collect_assignments()

    # -- assignments: what each {% set %} / for-target name can hold --------------------------
    def _collect_assignments(self) -> None:
        macros: dict[str, nodes.Macro] = {}
        for node in self.tree.find_all((nodes.Assign, nodes.For, nodes.AssignBlock, nodes.Macro, nodes.With,
                                        nodes.CallBlock)):
            if isinstance(node, nodes.Macro):
                macros[node.name] = node
                self.local_names.add(node.name)
                self._bind_parameters(node.args, node.defaults)
                continue
            if isinstance(node, nodes.CallBlock):
                self._bind_parameters(node.args, node.defaults)
                continue
            if isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values):
                    for name in ([target] if isinstance(target, nodes.Name) else list(target.find_all(nodes.Name))):
                        self._bind(name.name, value if isinstance(target, nodes.Name) else None, value)
                continue
            if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.NSRef):
                # {% set ns.attr = value %}: what `ns.attr` can hold is a source of `ns`
                self._bind(node.target.name, None, node.node)
                continue
            if isinstance(node, nodes.AssignBlock):
                # {% set k %}...{% endset %}: the block's rendered text is the value
                names = [node.target] if isinstance(node.target, nodes.Name) else list(node.target.find_all(nodes.Name))
                for target in names:
                    self._bind(target.name, nodes.Output(node.body) if isinstance(node.target, nodes.Name) else None,
                               nodes.Output(node.body))
                continue
            if not isinstance(node, (nodes.Assign, nodes.For)):  # the kinds left: {% set %} and {% for %}
                continue
            names = [node.target] if isinstance(node.target, nodes.Name) else list(node.target.find_all(nodes.Name))
            source = node.iter if isinstance(node, nodes.For) else getattr(node, "node", None)
            for target in names:
                bound = node.node if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name) else None
                self._bind(target.name, bound, source)
        # Macro parameters (and `varargs` / `kwargs` inside the macro) hold whatever call sites pass;
        # `caller(...)` arguments reach the parameters of `{% call(...) %}` blocks.
        for call in self.tree.find_all(nodes.Call):
            if not isinstance(call.node, nodes.Name):
                continue
            passed = list(call.args) + [kw.value for kw in call.kwargs] + \
                [n for n in (call.dyn_args, call.dyn_kwargs) if n is not None]
            if call.node.name in macros:
                params = [a.name for a in macros[call.node.name].args] + ["varargs", "kwargs"]
            elif call.node.name == "caller":
                params = [a.name for block in self.tree.find_all(nodes.CallBlock) for a in block.args]
            else:
                continue
            for param in params:
                for value in passed:
                    self._bind(param, None, value)

    def _bind_parameters(self, args: list[nodes.Name], defaults: list[nodes.Expr]) -> None:
        offset = len(args) - len(defaults)
        for i, arg in enumerate(args):
            default = defaults[i - offset] if i >= offset else None
            self._bind(arg.name, None, default)

    def _bind(self, name: str, value: nodes.Node | None, source: nodes.Node | None) -> None:
        """Record that `name` may hold `value` (foldable, or None) and derives from `source`."""
        self.local_names.add(name)
        self.assigned.setdefault(name, []).append(value)
        if source is not None:
            self.sources.setdefault(name, []).append(source)

    def fold(self, node: nodes.Node, depth: int = 0) -> Any:
        """The constant value of a string-ish expression, or _UNKNOWN (bounded, no evaluation)."""
        if depth > 50:
            return _UNKNOWN
        d = depth + 1
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.TemplateData):
            return node.data
        if isinstance(node, (nodes.Output, nodes.Concat)):
            return self._fold_concat(node.nodes, d)
        if isinstance(node, nodes.Getitem):
            return self._fold_item(node, d)
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.fold(i, d) for i in node.items]
            return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
        if isinstance(node, nodes.Name):
            values = self.assigned.get(node.name)
            if not values or len(values) != 1 or values[0] is None:
                return _UNKNOWN
            return self.fold(values[0], d)
        if isinstance(node, (nodes.Add, nodes.Mul, nodes.Mod)):
            return self._fold_binary(node, d)
        if isinstance(node, nodes.Filter):
            return self._fold_filter(node, d)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return self._fold_method(node, d)
        return _UNKNOWN

    def _fold_concat(self, parts_nodes: Sequence[nodes.Node], d: int) -> Any:
        """Template output or `~`: the text of every part, when every part folds."""
        parts = [self.fold(n, d) for n in parts_nodes]
        if any(p is _UNKNOWN for p in parts):
            return _UNKNOWN
        return self._bounded("".join(str(p) for p in parts))

    def _fold_binary(self, node: nodes.Add | nodes.Mul | nodes.Mod, d: int) -> Any:
        """String `+`, `*` (bounded) and `%` formatting of folded operands."""
        left, right = self.fold(node.left, d), self.fold(node.right, d)
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        try:
            if isinstance(node, nodes.Add) and isinstance(left, str) and isinstance(right, str):
                return self._bounded(left + right)
            if isinstance(node, nodes.Mul) and isinstance(left, str) and isinstance(right, int) \
                    and not isinstance(right, bool) and len(left) * max(right, 0) <= _FOLD_LIMIT:
                return left * right
            if isinstance(node, nodes.Mod) and isinstance(left, str) and \
                    isinstance(right, (str, int, float, list)):
                args = tuple(right) if isinstance(right, list) else right
                return self._bounded(left % args)
        except (TypeError, ValueError, OverflowError):
            return _UNKNOWN
        return _UNKNOWN

    def _fold_item(self, node: nodes.Getitem, d: int) -> Any:
        value = self.fold(node.node, d)
        if not isinstance(value, (str, list)):
            return _UNKNOWN
        key = node.arg
        try:
            if isinstance(key, nodes.Slice):
                bounds = [None if part is None else self.fold(part, d) for part in (key.start, key.stop, key.step)]
                if any(b is _UNKNOWN or not (b is None or (isinstance(b, int) and not isinstance(b, bool)))
                       for b in bounds) or bounds[2] == 0:
                    return _UNKNOWN
                return value[slice(*bounds)]
            index = self.fold(key, d)
            if isinstance(index, int) and not isinstance(index, bool):
                return value[index]
        except (IndexError, TypeError, ValueError):
            return _UNKNOWN
        return _UNKNOWN

    @staticmethod
    def _bounded(value: str) -> Any:
        return value if len(value) <= _FOLD_LIMIT else _UNKNOWN

    def _fold_filter(self, node: nodes.Filter, d: int) -> Any:
        if node.node is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return _UNKNOWN
        value = self.fold(node.node, d)
        args = [self.fold(a, d) for a in node.args]
        if value is _UNKNOWN or any(a is _UNKNOWN for a in args):
            return _UNKNOWN
        try:
            if node.name == "join" and isinstance(value, list) and len(args) <= 1:
                return self._bounded(str(args[0] if args else "").join(str(v) for v in value))
            if node.name == "replace" and isinstance(value, str) and len(args) in (2, 3) \
                    and all(isinstance(a, str) for a in args[:2]):
                out = value.replace(args[0], args[1]) if len(args) == 2 else \
                    value.replace(args[0], args[1], int(args[2]))
                return self._bounded(out)
            if node.name == "format" and isinstance(value, str):
                return self._bounded(value % tuple(args))
            if node.name in ("reverse",) and isinstance(value, (str, list)):
                return value[::-1]
            if node.name in ("lower", "upper", "title", "capitalize", "trim") and isinstance(value, str):
                return _CASE_FILTERS[node.name](value)
            if node.name in ("string", "e", "escape") and isinstance(value, (str, int)):
                return str(value)
            if node.name == "list" and isinstance(value, (str, list)):
                return list(value)
            if node.name in ("first", "last") and isinstance(value, (str, list)) and value:
                return value[0] if node.name == "first" else value[-1]
        except (TypeError, ValueError, OverflowError, IndexError):
            return _UNKNOWN
        return _UNKNOWN

    def _fold_method(self, node: nodes.Call, d: int) -> Any:
        method = node.node.attr  # type: ignore[attr-defined]
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            return _UNKNOWN
        obj = self.fold(node.node.node, d)  # type: ignore[attr-defined]
        args = [self.fold(a, d) for a in node.args]
        if obj is _UNKNOWN or any(a is _UNKNOWN for a in args) or not isinstance(obj, str):
            return _UNKNOWN
        try:
            if method == "join" and len(args) == 1 and isinstance(args[0], list):
                return self._bounded(obj.join(str(v) for v in args[0]))
            if method == "replace" and 2 <= len(args) <= 3 and all(isinstance(a, str) for a in args[:2]):
                return self._bounded(obj.replace(*args))
            if method in ("lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize",
                          "swapcase", "casefold") and len(args) <= 1:
                return getattr(str, method)(obj, *args)
            if method == "format" and all(isinstance(a, (str, int, float)) for a in args) \
                    and not _format_traverses(obj):
                return self._bounded(obj.format(*args))
        except (TypeError, ValueError, IndexError, KeyError, OverflowError):
            return _UNKNOWN
        return _UNKNOWN

    def builds_string(self, node: nodes.Node, depth: int = 0) -> bool:
        """True if the expression manipulates strings (concatenation, string filters or methods)."""
        if depth > 50:
            return True
        if isinstance(node, nodes.Concat):
            return True
        if isinstance(node, (nodes.Add, nodes.Mul, nodes.Mod)) and any(
                isinstance(side, nodes.Const) and isinstance(side.value, str) for side in (node.left, node.right)):
            return True
        if isinstance(node, nodes.Filter) and node.name in self.data["string_building_filters"]:
            return True
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and \
                node.node.attr in self.data["string_building_methods"]:
            return True
        if isinstance(node, nodes.Const) and isinstance(node.value, str) and _suspicious_text(node.value):
            return True
        if isinstance(node, nodes.TemplateData) and _suspicious_text(node.data):
            return True
        if isinstance(node, nodes.Name):
            if node.name in self.data["attacker_strings"] and node.name not in self.local_names:
                return True
            if node.name in self._visiting:  # {% set x = x ~ y %} refers to itself
                return False
            self._visiting.add(node.name)
            try:
                return any(self.builds_string(v, depth + 1) for v in self.sources.get(node.name, []))
            finally:
                self._visiting.discard(node.name)
        return any(self.builds_string(child, depth + 1) for child in node.iter_child_nodes())

    # -- the checks ---------------------------------------------------------------------------
    def run(self) -> list[_Hit]:
        for node in self.tree.find_all(nodes.Node):
            if isinstance(node, nodes.Getattr):
                self._attribute(node.attr, node, "attribute access")
                self._global_access(node.node, node.attr, node)
            elif isinstance(node, nodes.Getitem):
                self._item(node)
            elif isinstance(node, nodes.Filter):
                self._filter(node)
            elif isinstance(node, nodes.Call):
                self._call(node)
            elif type(node).__name__ in self.data["loader_statements"]:
                self.hits.append(_Hit("MS-TPL-006", node.lineno, {"statement": type(node).__name__.lower()}))
        if not any(h.rule in ("MS-TPL-001", "MS-TPL-002") for h in self.hits):
            # Backstop for data flows the folding does not follow: no real chat template carries a
            # dunder name in a string, and one that also looks names up dynamically can reach it.
            dunders = self.dunder_constants()
            if dunders and self.computed_lookups():
                self.hits.append(_Hit("MS-TPL-002", 1, {
                    "how": "a string holds a dunder name and the template looks attributes up by computed names",
                    "names": dunders[:10]}))
        return self.hits

    def _attribute(self, name: Any, node: nodes.Node, how: str, *, path: bool = False) -> bool:
        """Check one resolved attribute name (a dotted path if `path`); True if it was flagged."""
        if not isinstance(name, str):
            return False
        for part in name.split(".") if path else [name]:
            if part.startswith("_"):
                self.hits.append(_Hit("MS-TPL-001", node.lineno, {"name": part, "how": how}))
                return True
            if part in self.data["introspection_attributes"]:
                self.hits.append(_Hit("MS-TPL-004", node.lineno, {"name": part}))
                return True
        return False

    def _global_access(self, obj: nodes.Node, name: str, node: nodes.Node) -> None:
        if isinstance(obj, nodes.Name) and obj.name in self.data["template_globals"] \
                and obj.name not in self.local_names and not name.startswith("_"):
            self.hits.append(_Hit("MS-TPL-003", node.lineno, {"name": name, "glob": obj.name}))

    def _computed(self, key: nodes.Node, node: nodes.Node, how: str, *, path: bool = False) -> None:
        value = self.fold(key)
        if value is not _UNKNOWN:
            self._attribute(value, node, f"{how}, folded to {value!r}" if isinstance(value, str) else how,
                            path=path)
            return
        self.hits.append(_Hit("MS-TPL-002", node.lineno, {"how": how}))

    def _item(self, node: nodes.Getitem) -> None:
        key = node.arg
        if isinstance(key, nodes.Slice):
            return
        if isinstance(key, nodes.Const):
            # jinja2's getitem falls back to getattr: x['__class__'] is x.__class__
            if self._attribute(key.value, node, "subscript"):
                return
            if isinstance(key.value, str):
                self._global_access(node.node, key.value, node)
            return
        if self.builds_string(key):
            self._computed(key, node, "subscript with a computed string")

    def _filter(self, node: nodes.Filter) -> None:
        name = node.name
        dynamic = [n for n in (node.dyn_args, node.dyn_kwargs) if n is not None]
        if name == "attr":
            if dynamic and not node.args:
                self._spread(dynamic, node, "|attr with spread arguments")
                return
            if not node.args:
                return
            key = node.args[0]
            if isinstance(key, nodes.Const):
                self._attribute(key.value, node, "|attr filter")
                if node.node is not None and isinstance(key.value, str):
                    self._global_access(node.node, key.value, node)
            else:
                self._computed(key, node, "|attr with a computed name")
            return
        if name in ("map", "select", "reject") and node.args and isinstance(node.args[0], nodes.Const) \
                and node.args[0].value == "attr":
            for key in node.args[1:2]:
                if isinstance(key, nodes.Const):
                    self._attribute(key.value, node, f"|{name}('attr') filter")
                else:
                    self._computed(key, node, f"|{name}('attr') with a computed name")
            if len(node.args) < 2 and dynamic:
                self._spread(dynamic, node, f"|{name}('attr') with spread arguments")
        if name in self.data["attribute_filters"]:
            keys = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            position = self.data["attribute_positions"].get(name)
            if position is not None and len(node.args) > position:
                keys.append(node.args[position])
            for key in keys:
                if isinstance(key, nodes.Const):
                    self._attribute(key.value, node, f"|{name} attribute path", path=True)
                else:
                    self._computed(key, node, f"|{name} with a computed attribute path", path=True)
            if dynamic:
                self._spread(dynamic, node, f"|{name} with spread arguments", path=True)

    def _spread(self, values: Sequence[nodes.Node], node: nodes.Node, how: str, *, path: bool = False) -> None:
        """`*args` / `**kwargs` given to an attribute filter: every string they can hold is a name."""
        for value in values:
            folded = self.fold(value) if not isinstance(value, nodes.Dict) else self._fold_dict(value)
            if folded is _UNKNOWN:
                self.hits.append(_Hit("MS-TPL-002", node.lineno, {"how": how}))
                return
            items = folded if isinstance(folded, list) else [folded]
            for item in items:
                if isinstance(item, str) and self._attribute(item, node, how, path=path):
                    return

    def _fold_dict(self, node: nodes.Dict) -> Any:
        out = []
        for pair in node.items:
            value = self.fold(pair.value)
            if value is _UNKNOWN:
                return _UNKNOWN
            out.append(value)
        return out

    def dunder_constants(self) -> list[str]:
        """String constants (and literal template text of set blocks) that contain a dunder name."""
        found: list[str] = []
        for node in self.tree.find_all((nodes.Const, nodes.TemplateData)):
            text = node.value if isinstance(node, nodes.Const) else node.data if isinstance(node, nodes.TemplateData) \
                else None
            if isinstance(text, str):
                found.extend(_DUNDER.findall(text))
        return sorted(set(found))

    def computed_lookups(self) -> int:
        """How many attribute/item lookups take their name from something other than a literal."""
        count = 0
        for node in self.tree.find_all((nodes.Getitem, nodes.Filter)):
            if isinstance(node, nodes.Getitem):
                count += not isinstance(node.arg, (nodes.Const, nodes.Slice))
            elif isinstance(node, nodes.Filter) and (node.name == "attr"
                                                     or node.name in self.data["attribute_filters"]):
                args = list(node.args) + [kw.value for kw in node.kwargs]
                count += node.dyn_args is not None or node.dyn_kwargs is not None or \
                    any(not isinstance(a, nodes.Const) for a in args)
        return count

    def _call(self, node: nodes.Call) -> None:
        if not isinstance(node.node, nodes.Getattr) or node.node.attr not in ("format", "format_map"):
            return
        fmt = self.fold(node.node.node)
        if isinstance(fmt, str) and _format_traverses(fmt):
            self.hits.append(_Hit("MS-TPL-005", node.lineno, {"method": f"str.{node.node.attr}", "fmt": fmt[:200]}))
            for field_name in _format_fields(fmt):
                for part in field_name.replace("[", ".").replace("]", "").split(".")[1:]:
                    self._attribute(part, node, f"str.{node.node.attr} field {field_name!r}")


_DUNDER = re.compile(r"__[A-Za-z][A-Za-z0-9_]*?__|_TemplateReference__context")


def _suspicious_text(text: str) -> bool:
    """A constant that names, or carries a fragment of, an underscore attribute."""
    return text.startswith("_") or "__" in text


def _format_fields(fmt: str) -> Iterator[str]:
    try:
        for _, field_name, spec, _ in string.Formatter().parse(fmt):
            if field_name:
                yield field_name
            if spec and "{" in spec:
                yield from _format_fields(spec)
    except ValueError:
        return


def _format_traverses(fmt: str) -> bool:
    return any("." in f or "[" in f for f in _format_fields(fmt))


def parse_template(source: str) -> nodes.Template:
    """jinja2's parse tree of `source` (raises jinja2.TemplateSyntaxError); nothing is rendered."""
    return _parser_env().parse(source)


def analyse_template(source: str, ctx: "ScanContext", *, field: str, offset: int | None = None) -> None:
    """Analyse one chat template and report findings into `ctx` (never raises for bad templates).

    `field` names where the template came from (e.g. "tokenizer.chat_template.tool_use" or
    "chat_template"), `offset` is its byte offset in the artefact when known. A summary (field,
    length, sha256) is appended to `ctx.artefact.properties["chat_templates"]` for the BOM.
    """
    summary: TemplateSummary = {"field": field, "chars": len(source),
                               "sha256": hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()}
    ctx.artefact.properties.setdefault("chat_templates", []).append(summary)
    if len(source) > MAX_TEMPLATE_CHARS:
        ctx.add("MS-TPL-008", offset=offset, field=field,
                error=f"{len(source)} characters exceed the {MAX_TEMPLATE_CHARS}-character template budget")
        summary["analysed"] = False
        return
    try:
        tree = parse_template(source)
    except jinja2.TemplateSyntaxError as exc:
        ctx.add("MS-TPL-007", offset=offset, line=exc.lineno, field=field, lineno=exc.lineno,
                error=exc.message or "syntax error")
        summary["analysed"] = False
        return
    except RecursionError:
        ctx.add("MS-TPL-008", offset=offset, field=field, error="nesting too deep for the parser")
        summary["analysed"] = False
        return
    try:
        hits = _Analyser(tree).run()
    except RecursionError:
        ctx.add("MS-TPL-008", offset=offset, field=field, error="nesting too deep for the analysis")
        summary["analysed"] = False
        return
    summary["analysed"] = True
    seen: set[tuple[str, int, str]] = set()
    for hit in hits:
        key = (hit.rule, hit.line, repr(sorted(hit.evidence.items())))
        if key in seen:
            continue
        seen.add(key)
        ctx.add(hit.rule, offset=offset, line=hit.line, field=field, lineno=hit.line, **hit.evidence)
