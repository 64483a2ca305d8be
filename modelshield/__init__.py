"""modelshield: ML supply-chain scanner and CycloneDX ML-BOM generator.

Public API for platforms that embed the scanner::

    from modelshield import scan, Policy
    report = scan("model.bin")                 # or ["dir/", "hf://org/name@rev"], policy=Policy.load()
    report.verdict                             # Verdict.CLEAN | UNSAFE | INCONCLUSIVE
    report.exit_code()                         # 0 passed, 1 blocked, 2 incomplete
    for target, artefact, finding in report.all_findings(): ...

Nothing is ever loaded or executed: the analysis is static and bounded.

The names below are imported on first use (PEP 562), so that `import modelshield` (and the CLI's
`--help`/`--version`) does not load the engine and every format module.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelshield.scanner import __version__

if TYPE_CHECKING:
    from modelshield.scanner.engine import scan
    from modelshield.scanner.errors import PolicyError
    from modelshield.scanner.findings import (Artefact, Finding, Kind, Location, Report, Severity, Status,
                                              TargetResult, Verdict)
    from modelshield.scanner.policy import Policy
    from modelshield.scanner.sources.interface import SourceOptions

_LAZY = {
    "scan": "modelshield.scanner.engine",
    "Policy": "modelshield.scanner.policy",
    "PolicyError": "modelshield.scanner.errors",
    "SourceOptions": "modelshield.scanner.sources.interface",
    **{name: "modelshield.scanner.findings" for name in (
        "Artefact", "Finding", "Kind", "Location", "Report", "Severity", "Status", "TargetResult", "Verdict")},
}

__all__ = ["scan", "Policy", "PolicyError", "SourceOptions", "Report", "TargetResult", "Artefact", "Finding",
           "Location", "Severity", "Kind", "Status", "Verdict", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelshield' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
