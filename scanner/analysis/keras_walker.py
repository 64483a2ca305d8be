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
from dataclasses import dataclass, field
from typing import Any

from ..blob import BytesBlob
from ..errors import BudgetExceeded
from ..context import ScanContext
from ..findings import Severity
from .marshal_reader import parse_marshal_code
from ..errors import MarshalError
from .. import datafiles


MAX_CONFIG_NODES = 2_000_000
MAX_CONFIG_DEPTH = 400
MAX_LAMBDA_BYTES = 16 << 20
MAX_EMBEDDED_BYTES = 2 << 30


@functools.lru_cache(maxsize=1)
def gadgets() -> dict[str, Any]:
    """The gadget table (data/keras_gadgets.toml)."""
    return datafiles.load("keras_gadgets.toml")


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
        """A Lambda's function, decoded as keras' `python_utils.func_load` does: a [code, defaults,
        closure] list is unpacked; base64, or else the string's raw-unicode-escape bytes; then marshal.
        Bytecode that does not decode is both a Lambda (high) and unanalysed (inconclusive)."""
        evidence: dict[str, Any] = {"layer": node_name, "config_path": path}
        severity = Severity.HIGH
        summary = "its bytecode could not be decoded"
        if isinstance(code, (list, tuple)) and code:
            code = code[0]
        error = None
        if not isinstance(code, str):
            error = f"the function payload is {type(code).__name__}, not a string"
        elif len(code) > MAX_LAMBDA_BYTES:
            error = f"{len(code)} characters exceed the {MAX_LAMBDA_BYTES}-character budget"
        else:
            try:
                raw = _func_load_bytes(code)
                info = parse_marshal_code(raw)
            except MarshalError as exc:
                error = str(exc)[:200]
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
        if error is not None:
            evidence["decode_error"] = error
            self.ctx.add("MS-KERAS-006", source=self.source, what=f"Lambda function of layer {node_name!r}",
                         error=error)
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
        self.ctx.descend(BytesBlob(raw, "module.pt"), "module.pt", member=f"{path}.config.module",
                         container=False, nested=True)

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


def _func_load_bytes(code: str) -> bytes:
    """The bytes keras' `func_load` hands to `marshal.loads`: `codecs.decode(..., "base64")` (lenient
    base64), or, when that raises, the string encoded with `raw_unicode_escape`."""
    try:
        return binascii.a2b_base64(code.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        return code.encode("raw_unicode_escape")


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
