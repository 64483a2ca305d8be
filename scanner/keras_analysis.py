"""Keras model-config analysis shared by `.keras` zips, Keras `.h5` files and bare JSON configs.

Walks the deserialisation tree the way `keras.saving.deserialize_keras_object` would, without
importing anything: Lambda layers (base64 marshalled bytecode, parsed statically by
`parse_marshal_code`, never `marshal.loads`), `module`/`class_name` references outside Keras' own
namespace or to known gadgets (CVE-2025-1550), non-modelling Keras APIs such as `get_file`
(CVE-2025-8747, archive traversal CVE-2025-12060) and `enable_unsafe_deserialization`
(CVE-2025-9906), and `TorchModuleWrapper` whose config carries a `torch.save` archive
(CVE-2025-49655, sent back through the sniffer so the pickle engine sees it).
"""
from __future__ import annotations

import base64
import binascii
import builtins
import functools
import struct
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .blob import BytesBlob
from .budgets import BudgetExceeded
from .context import ScanContext
from .findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_CONFIG_NODES = 2_000_000
MAX_CONFIG_DEPTH = 400
MAX_LAMBDA_BYTES = 16 << 20
MAX_EMBEDDED_BYTES = 2 << 30


@functools.lru_cache(maxsize=1)
def gadgets() -> dict[str, Any]:
    """The gadget table (data/keras_gadgets.toml)."""
    text = (resources.files("modelshield.scanner") / "data" / "keras_gadgets.toml").read_text("utf-8")
    return tomllib.loads(text)


# --------------------------------------------------------------------------------------------
# Static marshal reader (code objects of CPython 3.8 - 3.14), enough to list what a Lambda reaches.
# --------------------------------------------------------------------------------------------

class MarshalError(ValueError):
    """The bytes are not a marshalled code object this reader understands."""


@dataclass
class CodeInfo:
    """What a marshalled code object names: co_names, string constants, nested code objects."""

    name: str = ""
    filename: str = ""
    names: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    children: list["CodeInfo"] = field(default_factory=list)
    layout: str = ""

    def all_names(self) -> list[str]:
        out = list(self.names)
        for child in self.children:
            out += child.all_names()
        return out

    def all_strings(self) -> list[str]:
        out = list(self.strings)
        for child in self.children:
            out += child.all_strings()
        return out


class _Code:
    """Placeholder for a parsed code object inside the object graph."""

    def __init__(self, info: CodeInfo) -> None:
        self.info = info


class _MarshalReader:
    # Code object field layouts: ints are int32, objs are marshalled objects, in file order.
    LAYOUTS = {
        "3.11+": ("i", "i", "i", "i", "i", "code", "consts", "names", "o", "o", "filename", "name", "o",
                  "i", "o", "o"),
        "3.8-3.10": ("i", "i", "i", "i", "i", "i", "code", "consts", "names", "o", "o", "o", "filename",
                     "name", "i", "o"),
    }

    def __init__(self, data: bytes, layout: str, max_objects: int = 1_000_000) -> None:
        self.data, self.pos, self.layout = data, 0, self.LAYOUTS[layout]
        self.layout_name = layout
        self.refs: list[Any] = []
        self.objects, self.max_objects, self.depth = 0, max_objects, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MarshalError(f"truncated at {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def size(self) -> int:
        n = self.i32()
        if n < 0 or n > len(self.data):
            raise MarshalError(f"bad size {n} at {self.pos - 4}")
        return n

    def obj(self) -> Any:
        self.objects += 1
        if self.objects > self.max_objects:
            raise MarshalError("too many objects")
        self.depth += 1
        if self.depth > 200:
            raise MarshalError("nesting too deep")
        try:
            return self._obj()
        finally:
            self.depth -= 1

    def _obj(self) -> Any:
        code = self.take(1)[0]
        flag, t = code & 0x80, chr(code & 0x7F)
        idx = None
        if flag and t != "r":
            idx = len(self.refs)
            self.refs.append(None)
        value = self._value(t)
        if idx is not None:
            self.refs[idx] = value
        return value

    def _value(self, t: str) -> Any:  # noqa: C901 - one branch per marshal type code
        if t in "N0S.":
            return None
        if t == "F":
            return False
        if t == "T":
            return True
        if t == "i":
            return self.i32()
        if t == "I":
            return struct.unpack("<q", self.take(8))[0]
        if t == "g":
            return struct.unpack("<d", self.take(8))[0]
        if t == "y":
            return complex(*struct.unpack("<dd", self.take(16)))
        if t in "fx":
            parts = 2 if t == "x" else 1
            for _ in range(parts):
                self.take(self.take(1)[0])
            return 0.0
        if t == "l":
            n = self.i32()
            self.take(abs(n) * 2)
            return 0
        if t in "stuaA":
            raw = self.take(self.size())
            return raw if t == "s" else raw.decode("utf-8", "surrogatepass")
        if t in "zZ":
            return self.take(self.take(1)[0]).decode("latin-1")
        if t == ")":
            return tuple(self.obj() for _ in range(self.take(1)[0]))
        if t in "([<>":
            n = self.size()
            items = [self.obj() for _ in range(n)]
            return tuple(items)
        if t == "{":
            items = []
            while True:
                if self.pos < len(self.data) and self.data[self.pos] == ord("0"):
                    self.pos += 1
                    return tuple(items)
                items.append(self.obj())
                items.append(self.obj())
        if t == "r":
            n = self.i32()
            if not 0 <= n < len(self.refs) or self.refs[n] is None and n == len(self.refs) - 1:
                raise MarshalError(f"bad reference {n}")
            return self.refs[n]
        if t == "c":
            return _Code(self._code())
        raise MarshalError(f"unknown marshal type {t!r} at {self.pos - 1}")

    def _code(self) -> CodeInfo:
        info = CodeInfo(layout=self.layout_name)
        for slot in self.layout:
            if slot == "i":
                self.i32()
                continue
            value = self.obj()
            if slot == "code" and not isinstance(value, bytes):
                raise MarshalError("co_code is not bytes")
            if slot == "names":
                if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                    raise MarshalError("co_names is not a tuple of str")
                info.names = list(value)
            elif slot == "consts":
                if not isinstance(value, tuple):
                    raise MarshalError("co_consts is not a tuple")
                self._consts(value, info)
            elif slot in ("filename", "name"):
                if not isinstance(value, str):
                    raise MarshalError(f"co_{slot} is not str")
                setattr(info, slot, value)
        return info

    def _consts(self, values: tuple, info: CodeInfo) -> None:
        for v in values:
            if isinstance(v, str):
                info.strings.append(v)
            elif isinstance(v, bytes):
                info.strings.append(v.decode("latin-1"))
            elif isinstance(v, _Code):
                info.children.append(v.info)
            elif isinstance(v, tuple):
                self._consts(v, info)


def parse_marshal_code(data: bytes) -> CodeInfo:
    """Statically read a marshalled code object (as `marshal.dumps(fn.__code__)`), any 3.8+ layout."""
    errors = []
    for layout in _MarshalReader.LAYOUTS:
        reader = _MarshalReader(data, layout)
        try:
            value = reader.obj()
        except (MarshalError, UnicodeDecodeError, struct.error) as exc:
            errors.append(f"{layout}: {exc}")
            continue
        if isinstance(value, _Code) and reader.pos == len(data):
            return value.info
        errors.append(f"{layout}: not a code object filling the buffer")
    raise MarshalError("; ".join(errors))


# --------------------------------------------------------------------------------------------
# Config walk
# --------------------------------------------------------------------------------------------

@dataclass
class ConfigSummary:
    """Inventory kept for the BOM: layer classes, custom objects, lambdas."""

    layers: dict[str, int] = field(default_factory=dict)
    custom_objects: list[str] = field(default_factory=list)
    lambdas: int = 0
    nodes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"layer_classes": dict(sorted(self.layers.items())), "custom_objects": self.custom_objects[:200],
                "lambda_layers": self.lambdas}


def analyse_config(config: Any, ctx: ScanContext, *, source: str, h5: bool = False) -> ConfigSummary:
    """Report every unsafe construct of a Keras model config (already JSON-decoded).

    `source` names where the config came from (e.g. "config.json", "model_config attribute") for
    messages; `h5` marks legacy HDF5 files, where old Keras ignores safe_mode (CVE-2025-9905).
    """
    summary = ConfigSummary()
    _Walker(ctx, summary, source, h5).walk(config, None, 0, "$")
    return summary


class _Walker:
    def __init__(self, ctx: ScanContext, summary: ConfigSummary, source: str, h5: bool) -> None:
        self.ctx, self.summary, self.source, self.h5 = ctx, summary, source, h5
        table = gadgets()
        self.keras_packages = set(table["keras_packages"])
        self.api = table["keras_api"]
        self.py_modules = set(table["python"]["modules"])
        self.lambda_names = set(table["lambda"]["names"])
        self.lambda_modules = set(table["lambda"]["modules"])

    def walk(self, node: Any, parent: dict | None, depth: int, path: str) -> None:
        self.summary.nodes += 1
        if self.summary.nodes > MAX_CONFIG_NODES:
            raise BudgetExceeded("keras config nodes", MAX_CONFIG_NODES)
        if depth > MAX_CONFIG_DEPTH:
            raise BudgetExceeded("keras config depth", MAX_CONFIG_DEPTH)
        if self.summary.nodes % 10_000 == 0:
            self.ctx.check_time()
        if isinstance(node, list):
            for i, item in enumerate(node):
                self.walk(item, parent, depth + 1, f"{path}[{i}]")
            return
        if not isinstance(node, dict):
            return
        if "class_name" in node:
            self.object(node, parent, path)
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                self.walk(value, node, depth + 1, f"{path}.{key}")

    # one Keras object: {"module", "class_name", "config", "registered_name"}
    def object(self, node: dict, parent: dict | None, path: str) -> None:
        class_name = node.get("class_name")
        inner = node.get("config")
        module = node.get("module")
        name = str(class_name)
        if class_name == "__lambda__" and isinstance(inner, dict):
            self.lambda_code(inner.get("code", inner.get("value")), path, node_name=_layer_name(parent))
            return
        if class_name == "function" and isinstance(inner, str):
            name = inner
        if isinstance(class_name, str) and not class_name.startswith("__"):
            self.summary.layers[class_name] = self.summary.layers.get(class_name, 0) + 1
        if class_name == "Lambda" and isinstance(inner, dict):
            self.summary.lambdas += 1
            self.legacy_lambda(inner, path)
        if class_name == "TorchModuleWrapper" and isinstance(inner, dict):
            self.torch_module(inner, path)
        registered = node.get("registered_name")
        self.reference(module, name, registered, node, parent, path)

    def legacy_lambda(self, inner: dict, path: str) -> None:
        """Keras 2 / tf.keras Lambda: `function` is [code, defaults, closure] or a code string."""
        layer = inner.get("name", "?")
        for key, kind_key in (("function", "function_type"), ("output_shape", "output_shape_type"),
                              ("mask", "mask_type")):
            value = inner.get(key)
            if inner.get(kind_key) == "lambda" or (key == "function" and kind_key not in inner
                                                    and isinstance(value, list)):
                code = value[0] if isinstance(value, list) and value else value
                if isinstance(code, str):
                    self.lambda_code(code, f"{path}.config.{key}", node_name=layer)

    def lambda_code(self, code: Any, path: str, node_name: str) -> None:
        evidence: dict[str, Any] = {"layer": node_name, "config_path": path}
        severity = Severity.HIGH
        summary = "its bytecode could not be decoded"
        if isinstance(code, str) and len(code) <= MAX_LAMBDA_BYTES:
            try:
                raw = base64.b64decode(code.encode("ascii"), validate=False)
                info = parse_marshal_code(raw)
            except (binascii.Error, UnicodeEncodeError, MarshalError) as exc:
                evidence["decode_error"] = str(exc)[:200]
            else:
                names = sorted(set(info.all_names()))
                strings = [s[:200] for s in info.all_strings()][:50]
                hits = sorted({n for n in names if n in self.lambda_names} |
                              {s for s in strings if s in self.lambda_modules})
                evidence.update(names=names[:100], strings=strings, code_layout=info.layout,
                                function=info.name, filename=info.filename[:200], dangerous=hits)
                summary = "it references " + (", ".join(names[:12]) or "no global names")
                if hits:
                    severity = Severity.CRITICAL
                    summary += f"; dangerous: {', '.join(hits[:12])}"
        cve = ["CVE-2024-3660"] + (["CVE-2025-9905"] if self.h5 else [])
        hits = evidence.get("dangerous") or [None]
        self.ctx.add("MS-KERAS-001", severity=severity, cve=cve, callable=hits[0], source=self.source,
                     summary=summary, **evidence)

    def torch_module(self, inner: dict, path: str) -> None:
        payload = inner.get("module")
        self.ctx.add("MS-KERAS-005", source=self.source, layer=inner.get("name", "?"), config_path=path)
        if not isinstance(payload, str):
            return
        if len(payload) > MAX_EMBEDDED_BYTES:
            raise BudgetExceeded("embedded TorchModuleWrapper module", MAX_EMBEDDED_BYTES)
        try:
            raw = base64.b64decode(payload.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError) as exc:
            self.ctx.add("MS-KERAS-006", source=self.source, what="TorchModuleWrapper module", error=str(exc)[:200])
            return
        self.ctx.charge_decompressed(len(raw), len(payload))
        from .engine import analyse_blob  # local import: the engine imports the format modules

        with self.ctx.enter(f"{path}.config.module", nested=True):
            if self.ctx.member and self.ctx.member not in self.ctx.artefact.members:
                self.ctx.artefact.members.append(self.ctx.member)
            analyse_blob(BytesBlob(raw, "module.pt"), self.ctx, "module.pt")

    def reference(self, module: Any, name: str, registered: Any, node: dict, parent: dict | None,
                  path: str) -> None:
        if module is None or not isinstance(module, str):
            return
        top = module.split(".", 1)[0]
        full = f"{module}.{name}"
        if top in self.keras_packages:
            spec = self.api.get(name)
            if spec is not None:
                cve = list(spec.get("cve", []))
                if name == "get_file" and (_mentions_extract(node) or _mentions_extract(parent)):
                    cve.append("CVE-2025-12060")
                self.ctx.add("MS-KERAS-002", severity=Severity.parse(spec["severity"]), callable=full, cve=cve,
                             source=self.source, reference=full, why=spec["why"], config_path=path)
            return
        if module == "builtins" and node.get("class_name") == "function":
            # Keras resolves builtins functions among its own activations, losses...; Python
            # builtins of that name are what old Keras (CVE-2025-1550) imported instead.
            if hasattr(builtins, name):
                self.ctx.add("MS-KERAS-003", severity=Severity.CRITICAL, callable=full, source=self.source,
                             reference=full, config_path=path)
            return
        if top in self.py_modules or module.startswith("__builtin"):
            self.ctx.add("MS-KERAS-003", callable=full, source=self.source, reference=full, config_path=path)
            return
        self.summary.custom_objects.append(full if not registered else f"{full} ({registered})")
        self.ctx.add("MS-KERAS-004", source=self.source, reference=full, registered=str(registered or "-"),
                     config_path=path)


def _layer_name(parent: dict | None) -> str:
    if isinstance(parent, dict):
        name = parent.get("name")
        if isinstance(name, str):
            return name
    return "?"


def _mentions_extract(node: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("untar", "extract") and value:
                return True
            if _mentions_extract(value, depth + 1):
                return True
    elif isinstance(node, list):
        return any(_mentions_extract(v, depth + 1) for v in node)
    return False
