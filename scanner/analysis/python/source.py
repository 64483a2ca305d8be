"""Python source analysed as a whole module: parse, run the analyser, describe it for the BOM.

Loaders pick code files by name (`modeling_x.py`, `<dataset>.py`); the format module
(`formats/python_file.py`) hands their bytes here. Nothing is imported or run: `ast` only.

What a behaviour weighs depends on whether a loader runs the file on load (auto_map & co., a
dataset loading script: a `datasets` builder subclass runs on `load_dataset()`); that is only
known once the whole repo is scanned, so behaviours are recorded as `MS-PY-100` observations and
`code_review` promotes them (`promotion.promote`) to threats at their "loaded" severity
(data/python_dangerous.toml) for the files loaders reach, which are unreviewed code (MS-PY-020)
unless the policy lists their hash;
- malicious shapes (decode-then-exec, reverse shells, exfiltration hosts, persistence writes,
  credential theft) are threats wherever the file is.
"""
from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from ...errors import FormatError
from ...findings import PythonSourceFacts
from .analyser import MAX_LISTED, Analyser
from .folding import dotted
from .table import load_table

if TYPE_CHECKING:
    from ...context import ScanContext

BUILDER_BASES = ("GeneratorBasedBuilder", "ArrowBasedBuilder", "DatasetBuilder", "BeamBasedBuilder")


def analyse_source(data: bytes, ctx: "ScanContext") -> PythonSourceFacts:
    """Parse `data` with `ast`, report its behaviours into `ctx`, return its description.

    Raises FormatError (MS-PY-014) for text that is not Python. A file defining a `datasets`
    builder is a dataset loading script (`role`); `code_review` reports it and promotes its behaviours.
    """
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
    props: PythonSourceFacts = {
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
    return props


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
                name = dotted(base) or ""
                if name.split(".")[-1] in BUILDER_BASES:
                    out.append(node.name)
                    break
    return out[:MAX_LISTED]
