"""Detection and false alarms on the code-on-load classes (fixtures/code_cases.py).

A malicious case is detected when the gate blocks it (exit code 1 at the default fail-on high);
a benign case is a false alarm unless the gate passes it (exit 0) with no finding above low
(TorchScript archives keep their low info note MS-ARC-016).

    python bench/bench_code_detection.py
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixtures import code_cases  # noqa: E402

from modelshield import Severity, scan  # noqa: E402


def main() -> None:
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        cases = code_cases.build_all(Path(tmp))
        missed, alarms, rows = [], [], []
        for case in cases:
            report = scan(str(Path(tmp, case.folder)))
            worst = max((f.severity for _, _, f in report.all_findings() if f.active), default=None)
            code = report.exit_code()
            rows.append(f"{case.id:<28} {'malicious' if case.malicious else 'benign':<10} exit {code}  "
                        f"{report.verdict.value:<13} {worst.name.lower() if worst is not None else '-'}")
            if case.malicious and code != 1:
                missed.append(case.id)
            if not case.malicious and (code != 0 or (worst is not None and worst > Severity.LOW)):
                alarms.append(case.id)
    n = sum(c.malicious for c in cases)
    m = len(cases) - n
    print("\n".join(rows))
    print(f"malicious: {n}  benign: {m}")
    print(f"missed: {len(missed)}/{n}  false alarms: {len(alarms)}/{m}")
    for label, items in (("missed", missed), ("false alarms", alarms)):
        if items:
            print(f"{label}: {', '.join(items)}")


if __name__ == "__main__":
    main()
