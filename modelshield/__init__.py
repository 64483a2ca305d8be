"""modelshield: ML supply-chain scanner and CycloneDX ML-BOM generator.

Public API for platforms that embed the scanner::

    from modelshield import scan, Policy
    report = scan("model.bin")                 # or ["dir/", "hf://org/name@rev"], policy=Policy.load()
    report.verdict                             # Verdict.CLEAN | UNSAFE | INCONCLUSIVE
    report.exit_code()                         # 0 passed, 1 blocked, 2 incomplete
    for target, artefact, finding in report.all_findings(): ...

Nothing is ever loaded or executed: the analysis is static and bounded.
"""
from __future__ import annotations

from modelshield.scanner import __version__
from modelshield.scanner.engine import scan
from modelshield.scanner.findings import (Artefact, Finding, Kind, Location, Report, Severity, Status,
                                          TargetResult, Verdict)
from modelshield.scanner.policy import Policy
from modelshield.scanner.errors import PolicyError
from modelshield.scanner.sources.interface import SourceOptions

__all__ = ["scan", "Policy", "PolicyError", "SourceOptions", "Report", "TargetResult", "Artefact", "Finding",
           "Location", "Severity", "Kind", "Status", "Verdict", "__version__"]
