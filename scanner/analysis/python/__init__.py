"""The Python AST analyser (remote code, dataset loading scripts): nothing is imported or run.

- `source.analyse_source`: one module's bytes -> findings + a description for the BOM;
- `analyser`: the tree walk (behaviours, name resolution, nested exec strings);
- `folding`: pure `ast` helpers (dotted names, constant and path folding);
- `table`: the dangerous-Python table (data/python_dangerous.toml);
- `promotion`: observations -> threats once a loader is known to run the file.
"""
from __future__ import annotations

from .promotion import DATASET_SCRIPT, OBSERVATION, mark_dataset_script, promote
from .source import analyse_source

__all__ = ["DATASET_SCRIPT", "OBSERVATION", "analyse_source", "mark_dataset_script", "promote"]
